"""Cold start, whole process: a fresh interpreter imports the app and answers one event."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from typing import Any, NamedTuple

from bench import scenarios
from bench.proc import ChildRun, median, run_child
from bench.report import X_FLOOR, mib, ms, ratio, table
from bench.scenarios import FLOOR, LEAN_SDK, QUICKSTART, STORING, SWITCHBOARD, App
from bench.stack import Stack

# Lambda's INIT (process start, import of app.py) and INVOKE (the event) are measured apart; the
# model in bench/model.py turns them into latency and cost at each memory size.
SCENARIOS = ("voice", "sms", "twimlet", "messages", "worker")
WEB = ("voice", "sms", "twimlet", "messages")
TITLES = {
    "voice": "/voice webhook",
    "sms": "/sms webhook (stores the message)",
    "twimlet": "a twimlet (/twimlets/forward, stage 1)",
    "messages": "API: POST /messages (sends now)",
    "worker": "queue worker (one send)",
}
QUICK = "quickstart"
LAZY = "switchboard, SDKs on first use (API handler at 1,769 MB and above)"
EAGER = "switchboard, SDKs during INIT (API handler below 1,769 MB)"
BY_PATH = "switchboard without the extension (SSM by path), SDKs on first use"
LEAN = "lean SDK /sms, client on first use"
LEAN_INIT = "lean SDK /sms, client during INIT"
WORKER_LAZY = "switchboard worker, SDKs on first use (for comparison; not deployed)"
WORKER_INIT = "switchboard worker, SDKs during INIT (as deployed, at every size)"
SNAP = "switchboard under SnapStart: the first event after a restore (not deployed by default)"
EXT = LAZY  # Switchboard on the extension path, nothing heavy at INIT (the earlier figures')


class Variant(NamedTuple):
    """An app as one Lambda function runs it: Lambda's _HANDLER and memory size (they decide
    Switchboard's INIT work, chalicelib/runtime/warmup.py; None: as outside Lambda)."""

    label: str
    app: App
    extension: bool
    handler: str | None
    memory: int | None
    scenarios: tuple[str, ...]
    init_type: str | None = None  # AWS_LAMBDA_INITIALIZATION_TYPE; None: on-demand


VARIANTS: list[Variant] = [
    Variant("floor", FLOOR, False, None, None, SCENARIOS),
    Variant(QUICK, QUICKSTART, False, None, None, SCENARIOS),
    Variant(LAZY, SWITCHBOARD, True, "app.app", 1769, WEB),
    Variant(EAGER, SWITCHBOARD, True, "app.app", 128, WEB),
    Variant(BY_PATH, SWITCHBOARD, False, "app.app", 1769, ("voice", "sms")),
    Variant(LEAN, LEAN_SDK, True, None, None, ("sms",)),
    Variant(LEAN_INIT, scenarios.LEAN_INIT, True, None, None, ("sms",)),
    # Outside Lambda (no _HANDLER) nothing is preloaded: the worker as it would run lazily.
    Variant(WORKER_LAZY, SWITCHBOARD, True, None, None, ("worker",)),
    Variant(WORKER_INIT, SWITCHBOARD, True, "app.send_worker", 128, ("worker",)),
    # INIT as SnapStart runs it (once per version, into the snapshot), then the restore's hooks
    # (AWS's snapshot_restore_py) and the event; parameters by path, as that function reads them.
    Variant(SNAP, SWITCHBOARD, False, "app.app", 1769, ("voice", "sms"), "snap-start"),
]
OK = {"voice": {"200"}, "sms": {"200"}, "twimlet": {"200"}, "messages": {"201"}}


class Figure(NamedTuple):
    """Medians for one (scenario, variant); the cold event's figures exclude the warm ones."""

    cpu: float  # the whole child's CPU (wait4), the warm events' share taken out
    wall: float
    peak_kib: float
    startup: float
    import_cpu: float
    handle_cpu: float
    handle_wall: float
    warm_cpu: float  # per warm event, NaN when none ran
    warm_wall: float
    loaded: list[str]

    @property
    def init(self) -> float:
        """INIT: interpreter start and the import of the app (Lambda: at a full vCPU)."""
        return self.startup + self.import_cpu


def _event(scenario: str, app: App, stack: Stack) -> dict[str, Any]:
    if scenario == "voice":
        return scenarios.voice(app)
    if scenario == "sms":
        return scenarios.sms(app)
    if scenario == "twimlet":
        return scenarios.forward(app)
    if scenario == "messages":
        return scenarios.send(app)
    return scenarios.worker_event(app, stack)


def job(
    app: App, scenario: str, event: dict[str, Any], warm: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A child job: import app, hand it the one event, then the warm events (if any)."""
    target = "send_worker" if scenario == "worker" else "app"
    steps = [{"label": scenario, "target": target, "events": [event]}]
    if warm:
        steps.append({"label": "warm", "target": target, "events": warm})
    return {"app_dir": app.app_dir, "module": app.module, "steps": steps}


def _check(run: ChildRun, scenario: str, variant: Variant) -> None:
    for step in run.result["steps"]:
        outcomes = set(step["outcomes"])
        expected = OK.get(scenario) or ({"failures=0"} if variant.app is SWITCHBOARD else {"ok"})
        if not outcomes <= expected:
            raise RuntimeError(f"{scenario} of {variant.label} answered {step['outcomes']}")


def _pooled_init(samples: dict[tuple[str, str], list[ChildRun]]) -> dict[str, tuple[float, float]]:
    """Each variant's INIT (startup, import) medians over the runs of all its scenarios.

    INIT cannot see the event: a variant's runs of every scenario import the same app in the
    same environment, so they are samples of one figure. Pooling them (4 or 5 times the runs)
    keeps one scenario's unlucky runs from deciding a comparison that INIT dominates.
    """
    runs: dict[str, list[ChildRun]] = defaultdict(list)
    for (_, label), found in samples.items():
        runs[label].extend(found)
    return {
        label: (
            median(r.result["startup_cpu"] for r in found),
            median(r.result["import_cpu"] for r in found),
        )
        for label, found in runs.items()
    }


def _figure(runs: list[ChildRun], init: tuple[float, float]) -> Figure:
    def warm(run: ChildRun, key: str) -> float:
        steps = run.result["steps"]
        return steps[1][key] if len(steps) > 1 else 0.0

    def per_event(run: ChildRun, key: str) -> float:
        steps = run.result["steps"]
        return steps[1][key] / steps[1]["n"] if len(steps) > 1 else float("nan")

    return Figure(
        cpu=median(r.cpu - warm(r, "cpu") for r in runs),
        wall=median(r.wall - warm(r, "wall") for r in runs),
        peak_kib=median(r.peak_kib for r in runs),
        startup=init[0],
        import_cpu=init[1],
        handle_cpu=median(r.result["steps"][0]["cpu"] for r in runs),
        handle_wall=median(r.result["steps"][0]["wall"] for r in runs),
        warm_cpu=median(per_event(r, "cpu") for r in runs),
        warm_wall=median(per_event(r, "wall") for r in runs),
        loaded=runs[-1].result["loaded"],
    )


def _sent(run: ChildRun, scenario: str, variant: Variant) -> int:
    """How many messages this run had Twilio accept."""
    if variant.app is FLOOR:
        return 0
    return sum(
        step["outcomes"].get("201", 0)
        if scenario == "messages"
        else step["n"] * (scenario == "worker")
        for step in run.result["steps"]
    )


def measure(stack: Stack, *, runs: int, warmup: int, warm: int = 3) -> dict[str, Any]:
    """Every scenario for every variant, interleaved round by round (in a new order each) so
    drift hits all alike;
    each child answers one cold event, then warm events of the same route (for the cost)."""
    stack.reset()
    samples: dict[tuple[str, str], list[ChildRun]] = defaultdict(list)
    plan = [(s, v) for s in SCENARIOS for v in VARIANTS if s in v.scenarios]
    sends = stores = 0
    for round_number in range(warmup + runs):
        # A new order each round: a child runs faster or slower after some neighbours (the page
        # cache, the emulators' state), and a fixed order would hand that bias to one variant.
        random.Random(round_number).shuffle(plan)
        for scenario, variant in plan:
            app = variant.app
            event = _event(scenario, app, stack)
            warm_events = [_event(scenario, app, stack) for _ in range(warm)]
            env = stack.env(scenarios.env_name(app))
            if scenario == "messages" and app is SWITCHBOARD:
                # "Sends now": at the default 1/s, a child's four sends reserve 4 s of slots, so
                # a child run within seconds of another would queue its cold send (202, another
                # path: SQS instead of Twilio) by the luck of the round's order.
                env["SWITCHBOARD_SEND_RATE"] = "1000"
            if not variant.extension:
                env.pop("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", None)
            if variant.handler:
                env["_HANDLER"] = variant.handler
                env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(variant.memory)
            if variant.init_type:
                env["AWS_LAMBDA_INITIALIZATION_TYPE"] = variant.init_type
            run = run_child(job(app, scenario, event, warm_events), env)
            _check(run, scenario, variant)
            sends += _sent(run, scenario, variant)
            stores += (1 + warm) * (scenario == "sms" and app in STORING)
            if round_number >= warmup:
                samples[(scenario, variant.label)].append(run)
    accepted = [r for r in stack.twilio_requests() if r["method"] == "POST" and r["status"] == 201]
    if len(accepted) != sends:
        raise RuntimeError(f"the runs sent {len(accepted)} messages, expected {sends}")
    stored = scenarios.inbound_count(stack)
    if stored != stores:
        raise RuntimeError(f"the /sms runs stored {stored} messages, expected {stores}")
    pooled = _pooled_init(samples)
    return {
        "figures": {key: _figure(value, pooled[key[1]]) for key, value in samples.items()},
        # Each round's own (INIT, INVOKE) CPU, in round order for every key: a goal's verdict is
        # the medians', and how many rounds it held in says how close it was.
        "rounds": {
            key: [
                (r.result["startup_cpu"] + r.result["import_cpu"], r.result["steps"][0]["cpu"])
                for r in value
            ]
            for key, value in samples.items()
        },
        "importtime": importtime(stack, runs=runs),
        "warm_events": warm,
    }


def importtime(stack: Stack, *, runs: int) -> dict[str, Any]:
    """Where a /voice cold start's import time goes (python -X importtime, extension path).

    Each module's self and cumulative time is its median over runs (one run is noisy).
    """
    selfs: dict[str, list[int]] = defaultdict(list)
    cumulatives: dict[str, list[int]] = defaultdict(list)
    for _ in range(runs):
        run = run_child(
            job(SWITCHBOARD, "voice", scenarios.voice(SWITCHBOARD)),
            stack.env("switchboard"),
            python_flags=["-X", "importtime"],
        )
        for line in run.stderr.splitlines():
            found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| \s*(\S+)", line)
            if found:
                self_us, cumulative_us, name = found.groups()
                selfs[name].append(int(self_us))
                cumulatives[name].append(int(cumulative_us))
    modules = [(name, median(selfs[name]), median(cumulatives[name])) for name in selfs]
    by_package: dict[str, float] = defaultdict(float)
    for name, self_us, _ in modules:
        by_package[name.split(".")[0]] += self_us
    return {
        "runs": runs,
        "total_us": sum(m[1] for m in modules),
        "by_package": sorted(by_package.items(), key=lambda item: -item[1]),
        "top_self": sorted(modules, key=lambda m: -m[1])[:12],
        "cumulative": {name: cumulative for name, _, cumulative in modules},
    }


def render(data: dict[str, Any]) -> str:
    """Section 1: the measured CPU (and wall, memory) of each cold start; then the model."""
    from bench import model

    figures: dict[tuple[str, str], Figure] = data["figures"]
    out = [
        "## 1. Cold start, whole process",
        "",
        "A fresh `python` process imports the app and answers ONE event, then "
        f"{data['warm_events']} warm events of the same route (their figures are kept apart, "
        "for the cost table). CPU is the child's own user+system time (`os.wait4`, the warm "
        "events' share taken out), wall is spawn to exit, RSS is its peak (`VmHWM`, read by "
        "the child at exit). INIT (interpreter start and the import of the app: what Lambda runs "
        "before the event) and INVOKE (handling the cold event) are the child's own "
        "`time.process_time()` split; INIT cannot see the event, so a variant's INIT figures are "
        "the medians over its runs of every scenario it answers (the same app imported in the "
        "same environment: up to five times the samples of one scenario). The event is built "
        "in the parent and read from a file; "
        "the child imports nothing beyond the standard library and the app. Secrets come over "
        "HTTP from the moto server in another process: through the extension stand-in "
        "(`PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`) or through the SDK (`AWS_ENDPOINT_URL`). "
        "Switchboard runs as Lambda runs each function: `_HANDLER` and "
        "`AWS_LAMBDA_FUNCTION_MEMORY_SIZE` are set, and `chalicelib/runtime/warmup.py` decides "
        "from them what INIT loads. The /sms of Switchboard, of the quickstart (a module-scope "
        "boto3 `Table` resource, `put_item`) and of the lean SDK baselines "
        "(`bench/baselines/lean_sdk_app.py`: token through the extension, hmac, one "
        "conditional PutItem through a botocore client built on first use or, "
        "`lean_init_app.py`, during INIT; empty TwiML) each store the message in the same "
        "table, checked by counting the stored items after the section; the sends are "
        "checked against the local Twilio's log.",
        "",
    ]
    for scenario in SCENARIOS:
        floor = figures[(scenario, "floor")]
        rows = []
        for variant in VARIANTS:
            if scenario not in variant.scenarios:
                continue
            f = figures[(scenario, variant.label)]
            rows.append(
                [
                    variant.label,
                    ms(f.cpu),
                    ratio(f.cpu, floor.cpu),
                    ms(f.wall),
                    mib(f.peak_kib),
                    f"{ms(f.init)} / {ms(f.handle_cpu)}",
                    f"{ms(f.startup)} / {ms(f.import_cpu)}",
                    ms(f.warm_cpu),
                    ", ".join(f.loaded) or "—",
                ]
            )
        out += [
            f"### {TITLES[scenario]}",
            "",
            table(
                [
                    "app",
                    "CPU",
                    X_FLOOR,
                    "wall",
                    "peak RSS",
                    "INIT / INVOKE CPU",
                    "INIT: startup / import",
                    "warm CPU / event",
                    "heavy modules loaded",
                ],
                rows,
            ),
            "",
        ]
    out += model.render(data)
    out += _render_importtime(data["importtime"])
    return "\n".join(out)


def _render_importtime(data: dict[str, Any]) -> list[str]:
    packages = [[name, f"{us / 1000:.1f} ms"] for name, us in data["by_package"][:12]]
    top = [[name, f"{s / 1000:.1f} ms", f"{c / 1000:.1f} ms"] for name, s, c in data["top_self"]]
    return [
        "### Where a /voice cold start's imports go",
        "",
        "`python -X importtime` on the extension path, each module's median over "
        f"{data['runs']} runs (wall-clock µs as Python reports them, imports made while "
        f"handling included): {data['total_us'] / 1000:.1f} ms in all.",
        "",
        table(["top-level package", "self time"], packages),
        "",
        table(["module (largest self time)", "self", "cumulative"], top),
        "",
    ]
