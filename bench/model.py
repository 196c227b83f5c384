"""Lambda's cold start as the platform runs it, from the CPU that bench/cold.py measures.

INIT (interpreter start and the import of app.py, before the event) of an on-demand function
runs at about a full vCPU whatever the memory size, for at most 10 s (AWS's serverless guides;
third-party measurements agree; the Lambda docs say nothing). INVOKE runs at the memory size's
share of a vCPU: 1,769 MB is one vCPU (documented), so 128 MB is about 7 %. An INIT longer than
10 s is cut off and run again during the first invoke, at the memory size's share. Since 1 Aug
2025 INIT is billed like INVOKE.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from bench import cold
from bench.proc import ROOT
from bench.report import TIMES, table, verdict
from chalicelib.runtime import warmup

SIZES = (128, 256, 512, 1024, 1769)
FULL_VCPU_MB = warmup.FULL_VCPU_MB
INIT_LIMIT_S = 10.0
# us-east-1 on-demand list prices, December 2026 (x86; arm64 $0.0000133334 per GB-s).
X86_GB_S = 0.0000166667
ARM_GB_S = 0.0000133334
REQUEST = 0.20 / 1e6
# Twilio's US list prices (2026): an SMS segment, sent or received, and a minute of a call
# (billed by the started minute). The local Twilio prices a segment at the older $0.0079.
TWILIO_SMS = 0.0083
TWILIO_CALL_MINUTE = 0.014
TWILIO = {
    "voice": ("a call (1 min)", TWILIO_CALL_MINUTE),
    "sms": ("the SMS received", TWILIO_SMS),
    "twimlet": ("a call (1 min)", TWILIO_CALL_MINUTE),
    "messages": ("the SMS sent", TWILIO_SMS),
    "worker": ("the SMS sent", TWILIO_SMS),
}
# The goals, at the default memory size.
SMS_MAX_S = 0.5
SMS_VS_LEAN = 1.15
VOICE_MAX_S = 0.25


def share(memory: int) -> float:
    """The memory size's share of a vCPU during INVOKE (one thread: never more than one)."""
    return min(memory, FULL_VCPU_MB) / FULL_VCPU_MB


def latency(init: float, invoke: float, memory: int) -> float:
    """Modelled cold latency in seconds from the INIT and INVOKE CPU seconds measured here."""
    if init <= INIT_LIMIT_S:
        return init + invoke / share(memory)
    return INIT_LIMIT_S + (init + invoke) / share(memory)


def defaults(path: Any = ROOT / ".chalice" / "config.json") -> dict[str, int]:
    """Each function's lambda_memory_size in the Chalice config (the API handler's and the
    worker's), falling back to the app-wide value and Chalice's own default, 128."""
    config = json.loads(path.read_text())
    base = int(config.get("lambda_memory_size", 128))
    functions = config.get("lambda_functions", {})

    def size(name: str) -> int:
        return int(functions.get(name, {}).get("lambda_memory_size", base))

    return {"api": size("api_handler"), "worker": size("send_worker")}


def deployed(scenario: str, memory: int) -> str:
    """Which measured Switchboard variant Lambda runs at memory (the rule of warmup.plan)."""
    if scenario == "worker":
        work = warmup.plan(
            {"_HANDLER": "app.send_worker", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory)}
        )
        return cold.WORKER_INIT if work.modules else cold.WORKER_LAZY
    work = warmup.plan({"_HANDLER": "app.app", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory)})
    return cold.EAGER if work.modules else cold.LAZY


def modelled(figures: dict[tuple[str, str], Any], scenario: str, label: str, memory: int) -> float:
    if label == AS_DEPLOYED:
        label = deployed(scenario, memory)
    f = figures[(scenario, label)]
    return latency(f.init, f.handle_cpu, memory)


AS_DEPLOYED = "**Switchboard as deployed** (INIT work by function and size)"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def _billed(seconds: float, memory: int, price: float) -> float:
    """Dollars for one invocation billed seconds long (rounded up to the ms), request included."""
    return math.ceil(seconds * 1000 - 1e-9) / 1000 * memory / 1024 * price + REQUEST


def cost(f: Any, memory: int, *, warm: bool, price: float = X86_GB_S) -> float:
    """Dollars for one invocation: CPU at the memory size's share plus the I/O waits measured
    against the local stack; a cold one is billed its INIT too."""
    if warm:
        return _billed(
            f.warm_cpu / share(memory) + max(0.0, f.warm_wall - f.warm_cpu), memory, price
        )
    io = max(0.0, f.handle_wall - f.handle_cpu)
    return _billed(latency(f.init, f.handle_cpu, memory) + io, memory, price)


Rounds = dict[tuple[str, str], list[tuple[float, float]]]


def _per_round(rounds: Rounds, scenario: str, label: str, memory: int) -> list[float]:
    """The modelled latency of each round's own run (no pooled INIT)."""
    if label == AS_DEPLOYED:
        label = deployed(scenario, memory)
    return [latency(init, invoke, memory) for init, invoke in rounds[(scenario, label)]]


def _held(ours: list[float], limits: list[float], factor: float = 1.0) -> str:
    """ "held in k of n rounds": rounds whose own figures met the goal (round by round)."""
    held = sum(a <= b * factor for a, b in zip(ours, limits, strict=True))
    return f"held in {held} of {len(ours)} rounds"


def goals(
    figures: dict[tuple[str, str], Any], sizes: dict[str, int], rounds: Rounds | None = None
) -> list[list[str]]:
    """Issue 16's cold-start goals at the default memory sizes: [goal, this run, verdict] rows.

    The verdict is the medians'; with rounds, each comparison also says in how many rounds it
    held, taking each round's own runs (a close goal can go either way between runs).
    """
    api = sizes["api"]

    def at(scenario: str, label: str, memory: int = api) -> float:
        return modelled(figures, scenario, label, memory)

    def held(scenario: str, label: str, limit: Any, memory: int = api, factor: float = 1) -> str:
        if rounds is None:
            return ""
        ours = _per_round(rounds, scenario, label, memory)
        limits = (
            [limit] * len(ours)
            if isinstance(limit, float)
            else [min(values) for values in zip(*limit, strict=True)]
        )
        return f"; {_held(ours, limits, factor)}"

    def theirs(scenario: str, *labels: str, memory: int = api) -> list[list[float]]:
        if rounds is None:
            return []
        return [_per_round(rounds, scenario, label, memory) for label in labels]

    sms, voice = at("sms", AS_DEPLOYED), at("voice", AS_DEPLOYED)
    quick_sms, quick_voice = at("sms", cold.QUICK), at("voice", cold.QUICK)
    lean = min(at("sms", cold.LEAN), at("sms", cold.LEAN_INIT))
    cells = [(scenario, memory) for scenario in cold.SCENARIOS for memory in SIZES]

    def cell(scenario: str, memory: int) -> str:
        slower_in = ""
        if rounds is not None:
            ours = _per_round(rounds, scenario, AS_DEPLOYED, memory)
            quick = _per_round(rounds, scenario, cold.QUICK, memory)
            count = sum(a > b for a, b in zip(ours, quick, strict=True))
            slower_in = f", slower in {count} of {len(ours)} rounds"
        return (
            f"{cold.TITLES[scenario].split(' (')[0]} at {memory:,} MB "
            f"({_seconds(at(scenario, AS_DEPLOYED, memory))} against "
            f"{_seconds(at(scenario, cold.QUICK, memory))}{slower_in})"
        )

    slower = [cell(*c) for c in cells if at(c[0], AS_DEPLOYED, c[1]) > at(c[0], cold.QUICK, c[1])]
    # The cell closest to the quickstart's, when none is slower: how near "never" is.
    closest = min(cells, key=lambda c: at(c[0], cold.QUICK, c[1]) / at(c[0], AS_DEPLOYED, c[1]))
    never = "never slower" + (f"; closest: {cell(*closest)}" if rounds is not None else "")
    where = f"at {api:,} MB"
    return [
        [
            f"cold /sms {where} ≤ the quickstart's",
            f"{_seconds(sms)} against {_seconds(quick_sms)}"
            + held("sms", AS_DEPLOYED, theirs("sms", cold.QUICK)),
            verdict(sms, quick_sms, unit=" s"),
        ],
        [
            f"cold /sms {where} within {SMS_VS_LEAN - 1:.0%} of the best lean design",
            f"{_seconds(sms)} against {_seconds(lean)}: {sms / lean:.2f}{TIMES}"
            + held(
                "sms", AS_DEPLOYED, theirs("sms", cold.LEAN, cold.LEAN_INIT), factor=SMS_VS_LEAN
            ),
            verdict(sms / lean, SMS_VS_LEAN, unit=TIMES),
        ],
        [
            f"cold /sms {where} ≤ {SMS_MAX_S} s",
            _seconds(sms) + held("sms", AS_DEPLOYED, SMS_MAX_S),
            verdict(sms, SMS_MAX_S, unit=" s"),
        ],
        [
            f"cold /voice {where} ≤ {VOICE_MAX_S} s",
            _seconds(voice) + held("voice", AS_DEPLOYED, VOICE_MAX_S),
            verdict(voice, VOICE_MAX_S, unit=" s"),
        ],
        [
            f"cold /voice {where} ≤ the quickstart's",
            f"{_seconds(voice)} against {_seconds(quick_voice)}"
            + held("voice", AS_DEPLOYED, theirs("voice", cold.QUICK)),
            verdict(voice, quick_voice, unit=" s"),
        ],
        [
            "nothing slower than the quickstart at any memory size, on any route (Switchboard "
            "as deployed, the worker at each size too)",
            "slower: " + "; ".join(slower) if slower else never,
            "**met**" if not slower else f"**missed** ({len(slower)} of {len(cells)})",
        ],
    ]


def lowest_meeting(
    figures: dict[tuple[str, str], Any], worker: int, rounds: Rounds | None = None
) -> int | None:
    """The lowest API handler size whose cold /sms and /voice meet their goals (the goals'
    rows but the last, which is about every size): by the medians and, with rounds, in more
    than half of the rounds compared round by round, so a size that meets a goal by a hair
    in the medians alone (a coin toss between runs on a noisy machine) is not chosen."""
    for memory in SIZES:
        rows = goals(figures, {"api": memory, "worker": worker}, rounds)[:-1]
        if all(row[2] == "**met**" and _most_rounds(row[1]) for row in rows):
            return memory
    return None


def _most_rounds(cell: str) -> bool:
    """Whether a goals cell's "held in k of n rounds" (if any) says more than half."""
    found = re.search(r"held in (\d+) of (\d+) rounds", cell)
    return found is None or int(found[1]) * 2 > int(found[2])


def price_rows(figures: dict[tuple[str, str], Any], sizes: dict[str, int]) -> list[list[str]]:
    """What Lambda charges per million /voice and /sms at the default size, beside Twilio."""
    rows = []
    for scenario in ("voice", "sms"):
        what, price = TWILIO[scenario]
        f = figures[(scenario, deployed(scenario, sizes["api"]))]
        warm, cold_cost = (cost(f, sizes["api"], warm=w) for w in (True, False))
        rows.append(
            [
                f"Lambda's price of /{scenario} at {sizes['api']:,} MB per million, beside "
                f"Twilio's for {what}",
                f"${warm * 1e6:,.2f} warm, ${cold_cost * 1e6:,.2f} cold, against "
                f"${price * 1e6:,.0f} ({cold_cost / price:.2%} of it when every request is cold)",
                "",
            ]
        )
    return rows


def render(data: dict[str, Any]) -> list[str]:
    """Modelled latency per route and memory size, the goals, and the cost table."""
    figures = data["figures"]
    sizes = defaults()
    out = [
        "### Modelled cold latency at each memory size",
        "",
        "Lambda runs INIT (process start and the import of `app.py`) at about a full vCPU "
        "whatever the memory size, for at most 10 s, and the handler at the memory size's share "
        "of one vCPU (1,769 MB is one vCPU, documented; 128 MB about 7 %). The INIT figure is "
        "from AWS's serverless guides (“On-demand Lambda functions use a full vCPU "
        "(non-throttled) but is limited to 10 seconds during its initialization phase”) and "
        "third-party measurements, not the Lambda docs. So each figure below is INIT CPU + "
        f"INVOKE CPU {TIMES} 1,769 / memory (an INIT over 10 s would be cut off and run again "
        "at the handler's share), from the CPU measured above: CPU time (`wait4`, `process_time`), "
        "not wall time, because this machine's 2 cores are shared and CPU time is what contention "
        "disturbs least. What the model cannot see: network time (the PutItem's or Twilio's "
        "round trip; the cost table adds the waits measured against the local stack), the "
        "Lambda runtime's own start and the extension's (another process, started during INIT "
        "beside ours), TLS handshakes, and how Lambda's cores compare with this one.",
        "",
        f"Switchboard as deployed is the row its INIT rule gives at each size "
        f"(`chalicelib/runtime/warmup.py`): the API handler loads its route modules, botocore's "
        f"DynamoDB client and twilio.rest during INIT below {FULL_VCPU_MB:,} MB and nothing "
        "heavy at or above it; the worker and the schedules always load their SDKs during INIT.",
        "",
        "Under SnapStart (an option, off by default) INIT runs once per published version and "
        "each cold start restores its snapshot instead: its row's INIT is in parentheses "
        "because no cold start pays it, and its figures are only the first event after the "
        "restore (with the restore's hooks), a lower bound, since the restore itself needs "
        "Lambda's microVMs and cannot be measured here. That function reads its parameters by "
        "path (no extension under SnapStart), with credentials that Lambda hands over from a "
        "container endpoint (here they are in the environment, so their fetch is not counted).",
        "",
    ]
    headers = ["app", "INIT CPU", "INVOKE CPU", *[f"{m:,} MB" for m in SIZES]]
    for scenario in cold.SCENARIOS:
        rows = []
        for variant in cold.VARIANTS:
            if scenario not in variant.scenarios:
                continue
            f = figures[(scenario, variant.label)]
            if variant.label == cold.SNAP:  # INIT is in the snapshot; the restore is not seen
                rows.append(
                    [variant.label, f"({f.init * 1000:.0f} ms)", f"{f.handle_cpu * 1000:.0f} ms"]
                    + [f"≥ {_seconds(f.handle_cpu / share(m))}" for m in SIZES]
                )
                continue
            rows.append(
                [variant.label, f"{f.init * 1000:.0f} ms", f"{f.handle_cpu * 1000:.0f} ms"]
                + [_seconds(latency(f.init, f.handle_cpu, m)) for m in SIZES]
            )
        rows.append(
            [AS_DEPLOYED, "", ""]
            + [f"**{_seconds(modelled(figures, scenario, AS_DEPLOYED, m))}**" for m in SIZES]
        )
        out += [f"#### {cold.TITLES[scenario]}", "", table(headers, rows), ""]
    out += [
        f"The goals at the default memory sizes (API handler {sizes['api']:,} MB, worker "
        f"{sizes['worker']:,} MB, from `.chalice/config.json`) are checked in the table at the "
        "top of this file.",
        "",
    ]
    out += _render_cost(figures, sizes)
    return out


def _render_cost(figures: dict[tuple[str, str], Any], sizes: dict[str, int]) -> list[str]:
    rows, waits = [], []
    for scenario in cold.SCENARIOS:
        what, price = TWILIO[scenario]
        for warm in (True, False):
            row = [f"{cold.TITLES[scenario]}, {'warm' if warm else 'cold'}"]
            for memory in SIZES:
                f = figures[(scenario, deployed(scenario, memory))]
                row.append(f"${cost(f, memory, warm=warm) * 1e6:,.2f}")
            row.append(f"${price * 1e6:,.0f} ({what})")
            rows.append(row)
        f = figures[(scenario, deployed(scenario, sizes["api"]))]
        waits.append(
            [
                cold.TITLES[scenario],
                f"{max(0.0, f.warm_wall - f.warm_cpu) * 1000:.1f} ms",
                f"{max(0.0, f.handle_wall - f.handle_cpu) * 1000:.1f} ms",
            ]
        )
    return [
        "### Cost per million requests at each memory size",
        "",
        "AWS Lambda Power Tuning's table, computed offline: for Switchboard as deployed, the "
        "billed duration (CPU at the memory size's share plus the I/O waits measured here, "
        f"rounded up to the ms; a cold start's INIT billed too, as since 1 Aug 2025) {TIMES} "
        f"memory {TIMES} ${X86_GB_S} per GB-s (x86, us-east-1, December 2026; arm64 "
        f"${ARM_GB_S}, 20 % less, if its cores run this code as fast: not measured) + $0.20 per "
        "million requests; beside what Twilio charges for the message or call the request "
        f"serves (US list prices 2026: ${TWILIO_SMS} per SMS segment, ${TWILIO_CALL_MINUTE} per "
        "call minute; the local Twilio prices a segment at the older $0.0079, not used here). "
        "The I/O waits are wall minus CPU of the handler against the local stack (moto's server "
        "and the local Twilio on the same shared cores, so longer than DynamoDB's few ms and "
        "shorter than Twilio's real API): time Lambda bills but the memory size does not "
        "change. API Gateway's own price ($3.50 per million REST requests) is the same at "
        "every size and left out.",
        "",
        table(["route", *[f"{m:,} MB" for m in SIZES], "Twilio, per million"], rows),
        "",
        table(["I/O wait per event (at the default size)", "warm", "cold"], waits),
        "",
    ]
