"""Markdown for BENCHMARKS.md: tables, verdicts against targets, the machine and the versions."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from bench.proc import ROOT

TIMES = "\N{MULTIPLICATION SIGN}"
X_FLOOR = f"{TIMES} floor"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned."""
    align = [":---", *["---:"] * (len(headers) - 1)]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}{TIMES}" if base else "n/a"


def verdict(value: float, target: float, *, at_least: bool = False, unit: str = "") -> str:
    """ "met" or "missed by …" (how far from the target, absolute and relative)."""
    ok = value >= target if at_least else value <= target
    if ok:
        return "**met**"
    gap = abs(value - target)
    return f"**missed** by {gap:.3g}{unit} ({gap / target:.0%})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "app.py", "chalicelib")
    return head + (" (app.py/chalicelib with uncommitted changes)" if dirty else "")


def load() -> str:
    """The 1-, 5- and 15-minute load averages (other work on the machine shows here)."""
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def header(mode: str, note: str = "") -> str:
    """Date, machine, versions, the commit measured, and what the run shared the machine with."""
    versions = []
    for name in ("chalice", "twilio", "boto3", "botocore", "moto"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Written by `make bench` (`python -m bench.run`); do not edit by hand. "
            "How each figure is taken: each section's notes and [Method](#method); sources in "
            "`bench/`.",
            "",
            f"- Date: {now}; mode: {mode}",
            f"- Machine: {_cpu_model()}, {os.cpu_count()} cores, {_memory()} memory, "
            f"{platform.system()} {platform.release()}",
            f"- Python {platform.python_version()}; " + ", ".join(versions),
            f"- Commit measured: {_commit()}",
            f"- Load average (1, 5, 15 min) when the run started: {load()}"
            + (f"; {note}" if note else ""),
        ]
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"
