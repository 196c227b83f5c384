"""The measured process: import one app module, hand it prepared events, write what it measured."""

# Run as a script (python bench/child.py JOB.json) and kept to the standard library: whatever
# this file imports beyond the app's own imports would be counted as the app's cold start.
from __future__ import annotations

import importlib
import json
import os
import sys
import time

_STARTUP_CPU = time.process_time()


class Context:
    """The attributes of Lambda's context object that the apps read."""

    def __init__(self, number: int) -> None:
        self.aws_request_id = f"bench-{number:08d}"
        self.function_name = "bench"
        self.memory_limit_in_mb = 128
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _outcome(answer: object) -> str:
    if isinstance(answer, dict) and "statusCode" in answer:
        return str(answer["statusCode"])
    if isinstance(answer, dict) and "batchItemFailures" in answer:
        return f"failures={len(answer['batchItemFailures'])}"
    return "ok"


def _peak_kib() -> int:
    """This process's peak RSS since exec (VmHWM).

    Not ru_maxrss: Linux carries the forking parent's peak over into the child's across exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _profile(run: object) -> list[list[object]]:
    """Run under cProfile; every function's [file, name, calls, own seconds, cumulative]."""
    import cProfile
    import pstats

    # CPU time, not wall: waiting on a socket is not what the app costs.
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(run)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return [[f, name, nc, tt, ct] for (f, _, name), (_, nc, tt, ct, _) in stats.items()]


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    # The apps log JSON lines to stdout, as in Lambda; they are written, to /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.path.insert(0, job["app_dir"])
    start_peak = _peak_kib()
    before_import = time.process_time()
    module = importlib.import_module(job["module"])
    import_cpu = time.process_time() - before_import
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        # A restore: the runtime calls the hooks INIT registered (AWS's snapshot_restore_py,
        # imported by the app under SnapStart), then hands over the event.
        import snapshot_restore_py

        for hook, args, kwargs in snapshot_restore_py.get_after_restore():
            hook(*args, **kwargs)
    steps = []
    number = 0
    for step in job["steps"]:
        handler = getattr(module, step["target"])
        events = step["events"] * step.get("repeat", 1)
        outcomes: dict[str, int] = {}

        def run(
            handler: object = handler, events: list = events, outcomes: dict = outcomes
        ) -> None:
            nonlocal number
            for event in events:
                number += 1
                outcome = _outcome(handler(event, Context(number)))  # type: ignore[operator]
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        profile = None
        cpu, wall = time.process_time(), time.perf_counter()
        if step.get("profile"):
            profile = _profile(run)
        else:
            run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        steps.append(
            {
                "label": step["label"],
                "n": len(events),
                "cpu": cpu,
                "wall": wall,
                "outcomes": outcomes,
                "peak_kib": _peak_kib(),
                "profile": profile,
            }
        )
    heavy = ("boto3", "botocore", "twilio.rest", "requests", "urllib3", "http.client")
    result = {
        "startup_cpu": _STARTUP_CPU,
        "import_cpu": import_cpu,
        "steps": steps,
        "loaded": [name for name in heavy if name in sys.modules],
        "modules": len(sys.modules),
        "peak_kib": _peak_kib(),
        "start_peak_kib": start_peak,
    }
    with open(job["result"], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
