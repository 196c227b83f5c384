"""Warm: CPU µs per invocation of app.app(event, context) in one process, logging on."""

from __future__ import annotations

import sysconfig
from collections import defaultdict
from typing import Any, NamedTuple

from bench import putcost, scenarios
from bench.proc import ROOT, median, run_child
from bench.report import X_FLOOR, ratio, table, verdict
from bench.scenarios import FLOOR, LEAN_SDK, QUICKSTART, STORING, SWITCHBOARD, App
from bench.stack import Stack

TARGET_US = 150.0


class Case(NamedTuple):
    label: str
    app: App
    route: str  # "voice", "forward", "sms", "sms-repeat"


SMS_NEW = "switchboard /sms, new MessageSid each time"
SMS_QUICKSTART = "quickstart /sms, new MessageSid each time (boto3 resource put_item)"
SMS_LEAN = "lean SDK /sms, new MessageSid each time (botocore PutItem)"
CASES = [
    Case("floor /voice", FLOOR, "voice"),
    Case("floor /sms", FLOOR, "sms"),
    Case("quickstart /voice", QUICKSTART, "voice"),
    Case(SMS_QUICKSTART, QUICKSTART, "sms"),
    Case(SMS_LEAN, LEAN_SDK, "sms"),
    Case("switchboard /voice", SWITCHBOARD, "voice"),
    Case("switchboard /twimlets/forward (stage 1)", SWITCHBOARD, "forward"),
    Case(SMS_NEW, SWITCHBOARD, "sms"),
    Case("switchboard /sms, repeated MessageSid (dedupe path)", SWITCHBOARD, "sms-repeat"),
]
BASE = {"voice": "floor /voice", "forward": "floor /voice", "sms": "floor /sms"}
BASE["sms-repeat"] = "floor /sms"
PROFILED = [c for c in CASES if c.app is SWITCHBOARD]


def _job(case: Case, count: int, *, profile: bool = False) -> dict[str, Any]:
    """Two warm-up invocations (secrets fetched, lazy imports done), then count timed ones."""
    app = case.app
    if case.route == "sms" and app in STORING:
        # Each its own MessageSid: every invocation stores a new inbound message.
        warmup = [scenarios.sms(app) for _ in range(2)]
        timed, repeat = [scenarios.sms(app) for _ in range(count)], 1
    else:
        build = {
            "voice": scenarios.voice,
            "forward": scenarios.forward,
            "sms": scenarios.sms,
            "sms-repeat": scenarios.sms,
        }[case.route]
        event = build(app)
        # One signed event reused: after the warm-up, the repeated /sms is a duplicate delivery.
        warmup, timed, repeat = [event, event], [event], count
    return {
        "app_dir": app.app_dir,
        "module": app.module,
        "steps": [
            {"label": "warmup", "target": "app", "events": warmup},
            {
                "label": "timed",
                "target": "app",
                "events": timed,
                "repeat": repeat,
                "profile": profile,
            },
        ],
    }


def _env(stack: Stack, app: App) -> dict[str, str]:
    return stack.env(scenarios.env_name(app))


def measure(stack: Stack, *, runs: int, count: int, profile_count: int) -> dict[str, Any]:
    """Every case runs times (round-robin), each run a fresh process of count invocations."""
    cpu_us: dict[str, list[float]] = defaultdict(list)
    moto_us: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        # Every round against an empty table, so the rounds are alike.
        stack.reset()
        for case in CASES:
            job = _job(case, count)
            before = stack.cpu()["moto"]
            run = run_child(job, _env(stack, case.app))
            # The moto server's CPU for the whole child (warm-up included), per timed call.
            moto_us[case.label].append((stack.cpu()["moto"] - before) / count * 1e6)
            timed = run.result["steps"][1]
            if timed["outcomes"] != {"200": count}:
                raise RuntimeError(f"warm {case.label} answered {timed['outcomes']}")
            cpu_us[case.label].append(timed["cpu"] / count * 1e6)
    profiles = {}
    for case in PROFILED:
        run = run_child(_job(case, profile_count, profile=True), _env(stack, case.app))
        profiles[case.label] = _by_package(run.result["steps"][1]["profile"])
    return {
        "cpu_us": {k: median(v) for k, v in cpu_us.items()},
        "moto_us": {k: median(v) for k, v in moto_us.items()},
        "putcost": putcost.measure(runs=runs, count=min(count, 3000)),
        "count": count,
        "runs": runs,
        "profile_count": profile_count,
        "profiles": profiles,
    }


_STDLIB = sysconfig.get_paths()["stdlib"]


def _package(path: str) -> str:
    if path == "~":
        return "built-ins (C)"
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if path.startswith(str(ROOT)):
        return path[len(str(ROOT)) + 1 :].split("/")[0].removesuffix(".py")
    if path.startswith(_STDLIB):
        return "stdlib " + path[len(_STDLIB) + 1 :].split("/")[0].removesuffix(".py")
    return path


def _by_package(entries: list[list[Any]]) -> dict[str, Any]:
    """Own time by package; the app's functions by cumulative time; the costliest leaves."""
    total = sum(e[3] for e in entries) or 1.0
    packages: dict[str, float] = defaultdict(float)
    for path, _, _, own, _ in entries:
        packages[_package(path)] += own
    ours = [e for e in entries if _package(e[0]) in ("app", "chalicelib")]
    return {
        "packages": sorted(((k, v / total) for k, v in packages.items()), key=lambda kv: -kv[1]),
        "cumulative": [
            (f"{_package(path)}: {name}", calls, cumulative / total)
            for path, name, calls, _, cumulative in sorted(ours, key=lambda e: -e[4])[:10]
        ],
        "own": [
            (f"{_package(path)}: {name}", calls, own / total)
            for path, name, calls, own, _ in sorted(entries, key=lambda e: -e[3])[:8]
        ],
    }


def render(data: dict[str, Any]) -> str:
    cpu, moto = data["cpu_us"], data["moto_us"]
    rows = []
    for case in CASES:
        base = cpu[BASE[case.route]]
        is_ours = case.app is SWITCHBOARD
        rows.append(
            [
                case.label,
                f"{cpu[case.label]:.0f} µs",
                ratio(cpu[case.label], base),
                f"{moto[case.label]:.0f} µs" if moto[case.label] >= 1 else "—",
                verdict(cpu[case.label], TARGET_US, unit=" µs") if is_ours else "",
            ]
        )
    out = [
        "## 2. Warm invocations",
        "",
        f"One process per case: two warm-up invocations, then {data['count']:,} timed "
        "invocations of `app.app(event, context)` with pre-built signed events, logging on "
        "(the JSON lines go to stdout, which is /dev/null). CPU is the process's "
        "`time.process_time()` over the timed loop, divided by the count; median of "
        f"{data['runs']} processes. Secrets are cached after the warm-up (extension path). "
        "/sms writes DynamoDB over HTTP to the moto server, a separate process: its CPU is "
        "not in the app's figure but shown beside it (its `/proc` CPU over the whole child, "
        "per timed invocation), as DynamoDB's own work is not billed to the Lambda. The "
        "/voice and twimlet rows reuse one signed event; the first /sms row gives every "
        "invocation its own MessageSid (the new-message path, one PutItem each), the second "
        "reuses one (the dedupe path: the conditional PutItem fails). The quickstart's and "
        "the lean SDK baseline's /sms store every message too (new MessageSid each time, one "
        "PutItem each, in the same table); the floor's stores nothing.",
        "",
        table(
            [
                "case",
                "app CPU / call",
                X_FLOOR,
                "moto CPU / call",
                f"target ≤ {TARGET_US:.0f} µs",
            ],
            rows,
        ),
        "",
    ]
    put = data["putcost"]
    connect = put["close"] - put["keep"]
    out += [
        "**One PutItem, with no database behind it** (`bench/putcost.py`: a stub endpoint in "
        "another process answers `{}` at once; a child makes PutItems of an inbound-message "
        "record through `chalicelib.aws.storage` (a botocore client), its own CPU per call, "
        "median of "
        f"{data['runs']} processes):",
        "",
        table(
            ["", "app CPU / call"],
            [
                ["connection kept (as with DynamoDB)", f"{put['keep']:.0f} µs"],
                ["a new connection per call (as with moto's server)", f"{put['close']:.0f} µs"],
                [
                    "bare socket round trip of a small request, connection kept",
                    f"{put['raw']:.0f} µs",
                ],
            ],
        ),
        "",
        f"So {connect:.0f} µs of each /sms figure above is the TCP connect and close that moto's "
        "server forces and Lambda does not pay against DynamoDB: the new-message /sms would be "
        f"about {data['cpu_us'][SMS_NEW] - connect:.0f} µs with a kept connection (an estimate "
        "from these two measurements, not a measurement). What remains is the webhook itself "
        "(/voice's path plus the inbound record) and the PutItem's own work in botocore: "
        "parameter validation, the JSON body, SigV4, the HTTP exchange through urllib3 and "
        "parsing the answer.",
        "",
    ]
    ours, quick, lean = cpu[SMS_NEW], cpu[SMS_QUICKSTART], cpu[SMS_LEAN]
    out += [
        f"**Warm /sms with its PutItem, side by side:** Switchboard {ours:.0f} µs per "
        f"invocation; the quickstart's boto3 resource {quick:.0f} µs (Switchboard "
        f"{ratio(ours, quick)} it); the lean SDK baseline {lean:.0f} µs (Switchboard "
        f"{ratio(ours, lean)} it). All three pay the same new connection per PutItem against "
        "moto's server.",
        "",
    ]
    for label, profile in data["profiles"].items():
        shares = ", ".join(f"{name} {share:.0%}" for name, share in profile["packages"][:8])
        cumulative = [[n, f"{c:,}", f"{share:.1%}"] for n, c, share in profile["cumulative"]]
        own = [[n, f"{c:,}", f"{share:.1%}"] for n, c, share in profile["own"]]
        out += [
            f"**Where warm CPU goes, {label}** (cProfile with a CPU clock, one process of "
            f"{data['profile_count']:,} invocations; profiling inflates small calls, so read "
            f"the shares, not the times). Own time by package: {shares}.",
            "",
            table(["app function (cumulative)", "calls", "share of the loop's CPU"], cumulative),
            "",
            table(["any function (own time)", "calls", "share of the loop's CPU"], own),
            "",
        ]
    return "\n".join(out)
