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
