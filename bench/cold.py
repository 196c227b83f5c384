"""Cold start, whole process: a fresh interpreter imports the app and answers one event."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, NamedTuple

from bench import scenarios
from bench.proc import ROOT, ChildRun, median, run_child
from bench.report import TIMES, X_FLOOR, mib, ms, ratio, table, verdict
from bench.scenarios import FLOOR, LEAN_SDK, QUICKSTART, STORING, SWITCHBOARD, App
from bench.stack import Stack

TARGET_VOICE_CPU_RATIO = 1.5
# Cold /sms (it stores the message): against the lean SDK baseline and the quickstart.
TARGET_SMS_VS_LEAN = 1.15
TARGET_SMS_VS_QUICKSTART = 0.8
EXT = "switchboard (extension)"
BY_PATH = "switchboard (no extension: SSM by path)"
QUICK = "quickstart"
LEAN = "lean SDK /sms (extension, hmac, botocore PutItem)"
VARIANTS: list[tuple[str, App, bool]] = [
    ("floor", FLOOR, False),
    (QUICK, QUICKSTART, False),
    (EXT, SWITCHBOARD, True),
    (BY_PATH, SWITCHBOARD, False),
]
# Baselines with an /sms route only: the limit for a webhook that stores the message.
SMS_BASELINES: list[tuple[str, App, bool]] = [(LEAN, LEAN_SDK, True)]
# Counterfactuals, /voice only, extension path: what each technique saves.
EAGER = App("eager", str(ROOT), "bench.variants.eager_app", "bench.variants.eager_app")
CLIENTS = App("clients", str(ROOT), "bench.variants.clients_app", "bench.variants.clients_app")
COUNTERFACTUALS: list[tuple[str, App, bool]] = [
    ("switchboard, every lazy import made eager", EAGER, True),
    ("… and botocore/Twilio clients at module scope", CLIENTS, True),
]
SCENARIOS = ("voice", "sms", "worker")
EXPECTED = {"voice": {"200": 1}, "sms": {"200": 1}}


class Figure(NamedTuple):
    """Medians for one (scenario, variant)."""

    cpu: float
    wall: float
    peak_kib: float
    startup: float
    import_cpu: float
    handle_cpu: float
    loaded: list[str]


def _event(scenario: str, app: App, stack: Stack) -> dict[str, Any]:
    if scenario == "voice":
        return scenarios.voice(app)
    if scenario == "sms":
        return scenarios.sms(app)
    return scenarios.worker_event(app, stack)


def job(app: App, scenario: str, event: dict[str, Any]) -> dict[str, Any]:
    """A child job: import app, hand it the one event."""
    target = "send_worker" if scenario == "worker" else "app"
    step = {"label": scenario, "target": target, "events": [event]}
    return {"app_dir": app.app_dir, "module": app.module, "steps": [step]}


def _check(run: ChildRun, scenario: str, label: str) -> None:
    outcomes = run.result["steps"][0]["outcomes"]
    expected = EXPECTED.get(scenario) or (
        {"failures=0": 1} if label.startswith("switchboard") else {"ok": 1}
    )
    if outcomes != expected:
        raise RuntimeError(f"cold {scenario} of {label} answered {outcomes}, not {expected}")


def _figure(runs: list[ChildRun]) -> Figure:
    return Figure(
        cpu=median(r.cpu for r in runs),
        wall=median(r.wall for r in runs),
        peak_kib=median(r.peak_kib for r in runs),
        startup=median(r.result["startup_cpu"] for r in runs),
        import_cpu=median(r.result["import_cpu"] for r in runs),
        handle_cpu=median(r.result["steps"][0]["cpu"] for r in runs),
        loaded=runs[-1].result["loaded"],
    )


def measure(stack: Stack, *, runs: int, warmup: int) -> dict[str, Any]:
    """Every scenario for every variant, interleaved round by round so drift hits all alike."""
    stack.reset()
    samples: dict[tuple[str, str], list[ChildRun]] = defaultdict(list)
    plan = [(s, v) for s in SCENARIOS for v in VARIANTS]
    plan += [("sms", v) for v in SMS_BASELINES]
    plan += [("voice", v) for v in COUNTERFACTUALS]
    sends = stores = 0
    for round_number in range(warmup + runs):
        for scenario, (label, app, extension) in plan:
            event = _event(scenario, app, stack)
            env = stack.env(scenarios.env_name(app))
            if not extension:
                env.pop("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", None)
            run = run_child(job(app, scenario, event), env)
            _check(run, scenario, label)
            sends += scenario == "worker" and app is not FLOOR
            stores += scenario == "sms" and app in STORING
            if round_number >= warmup:
                samples[(scenario, label)].append(run)
    accepted = [r for r in stack.twilio_requests() if r["method"] == "POST" and r["status"] == 201]
    if len(accepted) != sends:
        raise RuntimeError(f"workers sent {len(accepted)} messages, expected {sends}")
    stored = scenarios.inbound_count(stack)
    if stored != stores:
        raise RuntimeError(f"the /sms runs stored {stored} messages, expected {stores}")
    return {
        "figures": {key: _figure(value) for key, value in samples.items()},
        "importtime": importtime(stack, runs=runs),
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
    figures: dict[tuple[str, str], Figure] = data["figures"]
    out = [
        "## 1. Cold start, whole process",
        "",
        "A fresh `python` process imports the app and answers ONE event; CPU is the child's own "
        "user+system time (`os.wait4`), wall is spawn to exit, RSS is its "
        "peak (`VmHWM`, read by the child at exit). "
        "Startup, import and handling are the child's own `time.process_time()` split. The "
        "event is built in the parent and read from a file; the child imports nothing beyond "
        "the standard library and the app. Secrets come over HTTP from the moto server in "
        "another process: through the extension stand-in (`PARAMETERS_SECRETS_EXTENSION_"
        "HTTP_PORT`) or through the SDK (`AWS_ENDPOINT_URL`). Ratios are against the floor. "
        "The /sms of Switchboard, of the quickstart (a module-scope boto3 `Table` resource, "
        "`put_item`) and of the lean SDK baseline (`bench/baselines/lean_sdk_app.py`: token "
        "through the extension, hmac, one conditional PutItem through a botocore client built "
        "on first use, empty TwiML) each store the message in the same table: one PutItem to "
        "the moto server, checked by counting the stored items after the section.",
        "",
    ]
    for scenario in SCENARIOS:
        floor = figures[(scenario, "floor")]
        rows = []
        labels = [v[0] for v in VARIANTS]
        if scenario == "sms":
            labels += [v[0] for v in SMS_BASELINES]
        if scenario == "voice":
            labels += [v[0] for v in COUNTERFACTUALS]
        for label in labels:
            f = figures[(scenario, label)]
            rows.append(
                [
                    label,
                    ms(f.cpu),
                    ratio(f.cpu, floor.cpu),
                    ms(f.wall),
                    ratio(f.wall, floor.wall),
                    mib(f.peak_kib),
                    ratio(f.peak_kib, floor.peak_kib),
                    f"{ms(f.startup)} / {ms(f.import_cpu)} / {ms(f.handle_cpu)}",
                    ", ".join(f.loaded) or "—",
                ]
            )
        title = {"voice": "/voice webhook", "sms": "/sms webhook", "worker": "queue worker"}
        out += [
            f"### {title[scenario]}",
            "",
            table(
                [
                    "app",
                    "CPU",
                    X_FLOOR,
                    "wall",
                    X_FLOOR,
                    "peak RSS",
                    X_FLOOR,
                    "startup / import / handle CPU",
                    "heavy modules loaded",
                ],
                rows,
            ),
            "",
        ]
    target = TARGET_VOICE_CPU_RATIO
    floor = figures[("voice", "floor")].cpu
    value = figures[("voice", EXT)].cpu / floor
    by_path = figures[("voice", BY_PATH)].cpu / floor
    out += [
        f"**Target: cold /voice CPU ≤ {target}{TIMES} the floor (extension path).** "
        f"{value:.2f}{TIMES}, {verdict(value, target, unit=TIMES)}. Without the extension "
        f"(not a target: the GetParametersByPath walk loads botocore): {by_path:.2f}{TIMES}.",
        "",
    ]
    out += _render_sms_targets(figures)
    out += _render_importtime(data["importtime"])
    return "\n".join(out)


def sms_ratios(figures: dict[tuple[str, str], Figure]) -> dict[str, float]:
    """Cold /sms CPU of Switchboard (extension path) against each baseline."""
    ours = figures[("sms", EXT)].cpu
    return {
        "lean": ours / figures[("sms", LEAN)].cpu,
        "quickstart": ours / figures[("sms", QUICK)].cpu,
        "floor": ours / figures[("sms", "floor")].cpu,
    }


def _render_sms_targets(figures: dict[tuple[str, str], Figure]) -> list[str]:
    ratios = sms_ratios(figures)
    floor = figures[("sms", "floor")].cpu
    by_floor = ", ".join(
        f"{label} {figures[('sms', label)].cpu / floor:.2f}{TIMES}"
        for label in (EXT, BY_PATH, LEAN, QUICK)
    )
    lean, quick = TARGET_SMS_VS_LEAN, TARGET_SMS_VS_QUICKSTART
    return [
        f"**Targets: cold /sms CPU (it stores the message; extension path) ≤ {lean}{TIMES} the "
        f"lean SDK baseline and ≤ {quick}{TIMES} the quickstart.** "
        f"Against the lean SDK baseline: {ratios['lean']:.2f}{TIMES}, "
        f"{verdict(ratios['lean'], lean, unit=TIMES)}; against the quickstart: "
        f"{ratios['quickstart']:.2f}{TIMES}, {verdict(ratios['quickstart'], quick, unit=TIMES)}. "
        f"Against the floor (which stores nothing): {by_floor}.",
        "",
    ]


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
