# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m devkit run

# One pytest worker per core (each with its own moto server and local Twilio); a file's tests
# stay on one worker, so a module's fixtures (the packaged app) are built once.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n auto --dist loadfile

# The benchmark of issue 4: minutes, not seconds; writes BENCHMARKS.md.
bench: $(STAMP)
	$(PY) -m bench.run --output BENCHMARKS.md $(if $(BENCH_NOTE),--note "$(BENCH_NOTE)")

# The deployment package (chalice package + bytecode): out/sam.json and out/deployment.zip.
STAGE ?= dev
package: $(STAMP)
	$(PY) -m devkit.package --stage $(STAGE) out/

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
