"""Documents that must follow the code: SECURITY.md names every kind of item the table holds."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Items that hold nothing about a person.
NOT_PERSONAL = {"limiter", "p"}


def test_security_md_lists_every_item_kind_the_code_writes():
    kinds = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        kinds |= set(re.findall(r'f?"([a-z_-]+)#', path.read_text()))
    assert {"msg", "optout", "velocity"} <= kinds  # the scan finds what it exists for
    listed = set(re.findall(r"`([a-z_-]+)#", (ROOT / "SECURITY.md").read_text()))
    missing = kinds - listed - NOT_PERSONAL
    assert not missing, f"SECURITY.md's personal data table lacks {sorted(missing)}"


def test_the_flow_guide_shows_the_test_that_runs():
    guide = (ROOT / "docs" / "your-own-flow.md").read_text()
    tests = (ROOT / "tests" / "functional" / "flows" / "test_hours.py").read_text()
    section = guide.split("## 4. Test it", 1)[1]
    shown = section.split("```python\n", 1)[1].split("```", 1)[0].strip()
    parts = shown.split("\n\n\n")
    assert len(parts) == 2 and all(part in tests for part in parts)
    assert "docs/examples/hours-call.json" in section
    assert (ROOT / "docs" / "examples" / "hours-call.json").exists()


def _goal(benchmarks: str, goal: str) -> str:
    """The "this run" cell of BENCHMARKS.md's goals row that starts with goal."""
    for line in benchmarks.splitlines():
        if line.startswith(f"| {goal}"):
            return line.split(" | ")[1]
    raise AssertionError(f"BENCHMARKS.md has no goal row {goal!r}")


def test_the_readmes_performance_figures_are_the_committed_benchmarks():
    """README's performance section quotes the committed run: a re-run updates both."""
    benchmarks = (ROOT / "BENCHMARKS.md").read_text()
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Performance\n", 1)[1].split("\n## ", 1)[0]
    section = " ".join(section.split())  # prose wraps anywhere
    figure = r"([\d.,]+ m?s)"
    sms = re.match(rf"{figure} against {figure}", _goal(benchmarks, "cold /sms at 1,769 MB ≤"))
    lean = re.search(rf"against {figure}:", _goal(benchmarks, "cold /sms at 1,769 MB within"))
    voice = re.match(
        rf"{figure} against {figure}", _goal(benchmarks, "cold /voice at 1,769 MB ≤ the")
    )
    assert sms and lean and voice
    assert f"| `/voice` | {voice[1]} | {voice[2]} | |" in section
    assert f"| `/sms` (stores the message) | {sms[1]} | {sms[2]} | {lean[1]} |" in section
    for route in ("/voice", "/sms"):
        price = re.match(
            r"(\$[\d.]+) warm, (\$[\d.]+) cold", _goal(benchmarks, f"Lambda's price of {route} ")
        )
        assert price
        assert f"{price[1]} per million warm `{route}`" in section
        assert f"{price[2]} per million cold `{route}`" in section
    warm_voice = _goal(benchmarks, "warm /voice CPU")
    warm_twimlet = _goal(benchmarks, "warm /twimlets/forward (stage 1) CPU")
    assert f"`/voice` takes {warm_voice} of CPU and a `forward` twimlet {warm_twimlet}" in section
    peak = float(_goal(benchmarks, "peak RSS").split()[0])
    assert f"peak memory with every route loaded is {round(peak)} MiB" in section
