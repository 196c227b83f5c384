"""Memory: the peak RSS of one process that has served every route, schedule and the worker."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from bench import scenarios
from bench.proc import ROOT, ChildRun, median, run_child
from bench.report import X_FLOOR, mib, ratio, table, verdict
from bench.scenarios import CALL, FLOOR, LEAN_SDK, QUICKSTART, RECIPIENT, SWITCHBOARD, App
from bench.stack import Stack
from devkit.worker import schedule_event

TARGET_MIB = 72.0
TWIMLETS = {
    "message": [("Message", "Thanks for calling")],
    "echo": [("Twiml", "<Response><Say>Echo</Say></Response>")],
    "forward": [("PhoneNumber", "+14155550100")],
    "callme": [("PhoneNumber", "+14155550100")],
    "simulring": [("PhoneNumbers[]", "+14155550100"), ("PhoneNumbers[]", "+14155550111")],
    "findme": [("PhoneNumbers[]", "+14155550100"), ("PhoneNumbers[]", "+14155550111")],
    "whisper": [("Message", "Call for Acme")],
    "menu": [("Message", "Press 1"), ("Options[1]", "https://example.com/one")],
    "conference": [("Name", "weekly")],
    "voicemail": [("Email", "office@example.com")],
    "holdmusic": [("Bucket", "com.twilio.music.classical")],
}


def _step(label: str, event: dict[str, Any], target: str = "app") -> dict[str, Any]:
    return {"label": label, "target": target, "events": [event]}


def _switchboard_steps(stack: Stack) -> list[dict[str, Any]]:
    """Every route once, against records seeded for the routes that read one."""
    app = SWITCHBOARD
    later = time.time() + 3600
    scheduled = scenarios.seed_message(stack, "scheduled", send_at=later)
    broadcast_id = uuid.uuid4().hex
    now = time.time()
    scenarios.seed(
        stack,
        {"pk": f"bcast#{broadcast_id}", "id": broadcast_id, "kind": "broadcast", "count": 1}
        | {"created_at": now, "send_at": later, "expires_at": int(now + 86400)},
    )
    scenarios.seed_message(stack, "scheduled", send_at=later, broadcast_id=broadcast_id)
    call_id = uuid.uuid4().hex
    scenarios.seed(
        stack,
        {"pk": f"call#{call_id}", "id": call_id, "kind": "call", "to": RECIPIENT}
        | {"sender": "+15005550006", "status": "queued", "created_at": now, "updated_at": now}
        | {"history": [{"status": "queued", "at": now}], "expires_at": int(now + 86400)},
    )
    # Fresh numbers: the velocity guard would refuse a run's eleventh send to one number.
    message = {"to": scenarios.fresh_recipient(), "body": "Your table is ready"}
    broadcast = {"to": [scenarios.fresh_recipient() for _ in range(2)], "body": "x"}
    callee = scenarios.fresh_recipient()
    status = {"MessageSid": scenarios.new_sid("SM"), "MessageStatus": "delivered"}
    steps = [
        _step("/voice", scenarios.voice(app)),
        _step("/sms", scenarios.sms(app)),
        _step("/fallback", scenarios.webhook(app, "/fallback", CALL)),
    ]
    steps += [
        _step(f"/twimlets/{name}", scenarios.webhook(app, f"/twimlets/{name}?{urlencode(q)}", CALL))
        for name, q in TWIMLETS.items()
    ]
    steps += [
        _step("/status/messages", scenarios.webhook(app, "/status/messages", status)),
        _step(
            "/status/calls",
            scenarios.webhook(app, "/status/calls", {**CALL, "CallSid": scenarios.new_sid("CA")}),
        ),
        _step("POST /messages", scenarios.api(app, "POST", "/messages", message)),
        _step("GET /messages/{id}", scenarios.api(app, "GET", f"/messages/{scheduled}")),
        _step("DELETE /messages/{id}", scenarios.api(app, "DELETE", f"/messages/{scheduled}")),
        _step(
            "POST /broadcasts",
            scenarios.api(app, "POST", "/broadcasts", broadcast),
        ),
        _step("GET /broadcasts/{id}", scenarios.api(app, "GET", f"/broadcasts/{broadcast_id}")),
        _step(
            "DELETE /broadcasts/{id}", scenarios.api(app, "DELETE", f"/broadcasts/{broadcast_id}")
        ),
        _step("POST /calls", scenarios.api(app, "POST", "/calls", {"to": callee})),
        _step("GET /calls/{id}", scenarios.api(app, "GET", f"/calls/{call_id}")),
        _step("GET /inbound", scenarios.api(app, "GET", "/inbound")),
        _step("dispatch_due", schedule_event("dispatch-due"), "dispatch_due"),
        _step("reconcile_sending", schedule_event("reconcile"), "reconcile_sending"),
        _step("send_worker", scenarios.worker_event(app, stack), "send_worker"),
    ]
    return steps


def _baseline_steps(app: App, stack: Stack) -> list[dict[str, Any]]:
    if app is LEAN_SDK:  # an /sms route and nothing else
        return [_step("/sms", scenarios.sms(app))]
    return [
        _step("/voice", scenarios.voice(app)),
        _step("/sms", scenarios.sms(app)),
        _step("send_worker", scenarios.worker_event(app, stack), "send_worker"),
    ]


# In the order Switchboard loads them (botocore as chalicelib.aws.clients builds its clients),
# then what the quickstart adds on top: boto3 and its resource layer.
PROBE = [
    ("import chalice", "import_chalice", {}),
    ("import botocore.session", "import_botocore", {}),
    ("botocore DynamoDB client", "client", {"service": "dynamodb"}),
    ("botocore SQS client", "client", {"service": "sqs"}),
    ("botocore SSM client", "client", {"service": "ssm"}),
    ("botocore S3 client", "client", {"service": "s3"}),
    ("botocore SES client", "client", {"service": "ses"}),
    ("import twilio.rest", "import_twilio_rest", {}),
    ("twilio Client and its Messages list", "twilio_client", {}),
    ("import boto3 (on top of the above)", "import_boto3", {}),
    ("boto3 DynamoDB resource and Table", "resource", {"service": "dynamodb"}),
]


def _probe(stack: Stack) -> list[tuple[str, int]]:
    """The peak after loading each heavy piece in turn into a bare interpreter."""
    steps = [_step(label, event, target) for label, target, event in PROBE]
    job = {"app_dir": str(ROOT), "module": "bench.variants.rss_probe", "steps": steps}
    run = run_child(job, stack.env("switchboard"))
    return [("bare interpreter (and this bench's child)", run.result["start_peak_kib"])] + [
        (s["label"], s["peak_kib"]) for s in run.result["steps"]
    ]


def _check(app: App, run: ChildRun) -> None:
    for step in run.result["steps"]:
        bad = [o for o in step["outcomes"] if o.startswith("5") or o.startswith("failures=1")]
        if bad:
            raise RuntimeError(f"memory run of {app.name}: {step['label']} answered {bad}")


def measure(stack: Stack, *, runs: int) -> dict[str, Any]:
    """Each app in a fresh process per run, interleaved; medians of the peaks."""
    stack.reset()
    peaks: dict[str, list[int]] = defaultdict(list)
    growth: dict[str, list[tuple[str, int, str]]] = {}
    for _ in range(runs):
        for app in (FLOOR, QUICKSTART, LEAN_SDK, SWITCHBOARD):
            ours = app is SWITCHBOARD
            steps = _switchboard_steps(stack) if ours else _baseline_steps(app, stack)
            job = {"app_dir": app.app_dir, "module": app.module, "steps": steps}
            run = run_child(job, stack.env(scenarios.env_name(app)))
            _check(app, run)
            peaks[app.name].append(run.peak_kib)
            growth[app.name] = [
                (s["label"], s["peak_kib"], ",".join(sorted(s["outcomes"])))
                for s in run.result["steps"]
            ]
    return {
        "peaks": {k: median(v) for k, v in peaks.items()},
        "growth": growth,
        "runs": runs,
        "probe": _probe(stack),
    }


def render(data: dict[str, Any]) -> str:
    peaks = data["peaks"]
    floor = peaks["floor"]
    rows = [
        [
            name,
            mib(peak),
            ratio(peak, floor),
            verdict(peak / 1024, TARGET_MIB, unit=" MiB") if name == SWITCHBOARD.name else "",
        ]
        for name, peak in peaks.items()
    ]
    steps = []
    previous = 0
    for label, peak, outcomes in data["growth"]["switchboard"]:
        steps.append([label, outcomes, mib(peak), f"+{(peak - previous) / 1024:.1f} MiB"])
        previous = peak
    probe, previous = [], 0
    for label, peak in data["probe"]:
        probe.append([label, mib(peak), f"+{(peak - previous) / 1024:.1f} MiB"])
        previous = peak
    return "\n".join(
        [
            "## 3. Memory",
            "",
            "Peak RSS (`VmHWM`) of one fresh process that served, in order, every webhook, all "
            "eleven twimlets (stage 1), every API route, both schedules and one worker batch "
            "(Switchboard); the floor and the quickstart served /voice, /sms and their worker, "
            "the lean SDK baseline its /sms (which stores the message). Median of "
            f"{data['runs']} processes. Target ≤ {TARGET_MIB:.0f} MiB applies to Switchboard.",
            "",
            table(["app", "peak RSS", X_FLOOR, f"≤ {TARGET_MIB:.0f} MiB"], rows),
            "",
            "Where Switchboard's peak grows (last run: the peak after each step, and by how "
            "much that step raised it):",
            "",
            table(["step", "answered", "peak after", "raised by"], steps),
            "",
            "What the heavy pieces weigh: one process loads each in turn (peak after each):",
            "",
            table(["loaded", "peak after", "raised by"], probe),
            "",
        ]
    )
