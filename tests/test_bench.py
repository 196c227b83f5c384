"""The benchmark runs end to end in its tiny mode, so it cannot rot (timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "## Goals, side by side in this run",
    "## 1. Cold start, whole process",
    "### /voice webhook",
    "### /sms webhook (stores the message)",
    "### a twimlet (/twimlets/forward, stage 1)",
    "### API: POST /messages (sends now)",
    "### queue worker (one send)",
    "### Modelled cold latency at each memory size",
    "### Cost per million requests at each memory size",
    "### Where a /voice cold start's imports go",
    "## 2. Warm invocations",
    "## 3. Memory",
    "## 4. Deployment package",
    "### Cold /voice run from the unzipped package",
    "## 5. Paced sending",
    "## What the cold-start work bought",
    "## What the return to botocore cost",
    "## What a deployment can do about it",
    "## Method",
)


def test_tiny_benchmark_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--tiny", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    text = output.read_text()
    missing = [section for section in SECTIONS if section not in text]
    assert not missing, missing
    assert "not measured (the section failed" not in text
