"""Child processes: run one and read its own rusage, read a running process's CPU, take medians."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).resolve().with_name("child.py")


class ChildRun(NamedTuple):
    """What one measured child process cost (CPU from its own rusage, wait4) and reported."""

    cpu: float  # user + system seconds of the child alone
    wall: float  # spawn to exit, seconds
    peak_kib: int  # the child's own VmHWM (ru_maxrss would include the forking parent's)
    result: dict[str, Any]
    stderr: str


class ChildError(RuntimeError):
    """A measured child failed; the message carries its stderr."""


def run_child(
    job: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    python_flags: Sequence[str] = (),
    timeout: float = 600.0,
) -> ChildRun:
    """Run bench/child.py on job in a fresh interpreter and measure it.

    Raises:
        ChildError: the child exited non-zero or timed out.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        job_file, result_file = Path(tmp, "job.json"), Path(tmp, "result.json")
        job_file.write_text(json.dumps({**job, "result": str(result_file)}))
        # A file, not a pipe: -X importtime writes more than a pipe holds while wait4 blocks.
        with open(Path(tmp, "stderr"), "w+") as stderr:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, *python_flags, str(CHILD), str(job_file)],
                env=dict(env),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            killer = threading.Timer(timeout, proc.kill)
            killer.start()
            try:
                # wait4, not Popen.wait: it returns this child's own rusage.
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:  # interrupted: leave no child behind
                proc.kill()
                proc.wait()
                raise
            finally:
                killer.cancel()
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            stderr.seek(0)
            errors = stderr.read()
        if proc.returncode != 0:
            raise ChildError(f"{job.get('module')} exited {proc.returncode}:\n{errors[-4000:]}")
        result = json.loads(result_file.read_text())
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(cpu, wall, result["peak_kib"], result, errors)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a running process (all its threads) has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # Fields 14 and 15 of proc(5) (utime, stime), counted from field 3 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


# Bytecode of everything the children import, kept outside the tree: a shell that sets
# PYTHONDONTWRITEBYTECODE would otherwise have every edited module compiled at each cold start,
# and `chalice package` copies the tree's __pycache__ into the zip.
PYCACHE = ROOT / ".local" / "bench-pycache"


def clean_environ() -> dict[str, str]:
    """This process's environment without anything that configures AWS, Twilio or the app.

    Bytecode is written to and read from PYCACHE, so after a warm-up every process imports
    compiled modules, the app's included.
    """
    prefixes = ("AWS_", "TWILIO_", "SWITCHBOARD_", "PARAMETERS_SECRETS_", "PYTHONPATH")
    prefixes += ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env
