# Two commands on a fresh machine: `make run` and `make test`.
# Lambda's runtime is the packaging Python's. 3.11 first: it ran Switchboard ~25 % faster than
# 3.13 here (docs/performance.md, "Python version"); 3.12+ for SnapStart (`make clean install
# PYTHON=python3.13`). A pyenv install counts even when pyenv's shims do not expose it.
PYENV_PYTHONS = $(shell ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(1)*/bin/python$(1) 2>/dev/null | sort -rV)
PYTHON ?= $(shell for p in python3.11 $(call PYENV_PYTHONS,3.11) python3.13 $(call PYENV_PYTHONS,3.13) python3.12 $(call PYENV_PYTHONS,3.12) python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench package deploy destroy clean browser

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	@# An existing venv keeps its Python (3.11+ all work); `make clean install` moves it to $(PYTHON).
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 requires pip<26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m devkit run

# One pytest worker per core (each with its own moto server and local Twilio); a file's tests
# stay on one worker, so a module's fixtures (the packaged app) are built once.
test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n auto --dist loadfile

# The softphone page's tests drive Debian's chromium (Playwright's own browser download is not
# used): installed here when missing, as root with apt; elsewhere those tests skip and say why.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian's chromium for the softphone page's tests"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends chromium >/dev/null; } \
			|| echo "chromium could not be installed: the softphone page's browser tests will skip"; \
		else \
			echo "no $(CHROMIUM) and no root apt: the softphone page's browser tests will skip"; \
		fi; \
	fi

# The benchmark: minutes, not seconds; writes BENCHMARKS.md.
bench: $(STAMP)
	$(PY) -m bench.run --output BENCHMARKS.md $(if $(BENCH_NOTE),--note "$(BENCH_NOTE)")

# The deployment package (chalice package + bytecode): out/sam.json and out/deployment.zip.
STAGE ?= dev
package: $(STAMP)
	$(PY) -m devkit.package --stage $(STAGE) out/

# A stage to AWS and back (devkit/deploy.py): make deploy STAGE=prod ARGS="--configure-number +1…"
deploy: $(STAMP)
	$(PY) -m devkit.deploy deploy --stage $(STAGE) $(ARGS)

destroy: $(STAMP)
	$(PY) -m devkit.deploy destroy --stage $(STAGE) $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
