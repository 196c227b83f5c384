"""The apps under measurement and the events handed to them, built outside the measurement."""

from __future__ import annotations

import importlib
import itertools
import json
import uuid
from functools import cache
from typing import Any, NamedTuple

from bench.proc import ROOT
from bench.stack import QUEUE, TABLE, Stack
from devkit import demo
from devkit.events import rest_event, twilio_event
from devkit.worker import sqs_event

EXECUTE_API = "https://abc123defg.execute-api.us-east-1.amazonaws.com/api"
QUEUE_ARN = f"arn:aws:sqs:{demo.REGION}:123456789012:{QUEUE}"
CALL = demo.CALL
RECIPIENT = "+15105550199"
_numbers = itertools.count()


def fresh_recipient() -> str:
    """A number not sent to before in this run: the velocity guard allows 10 sends an hour to
    one destination, and the benchmark's sends are not what it guards against."""
    return f"+1510556{next(_numbers) % 10_000:04d}"


class App(NamedTuple):
    """An app the benchmark runs: where its module lives and its name."""

    name: str
    app_dir: str
    module: str
    package: str  # importable from the repository root, for reading its routes here


FLOOR = App("floor", str(ROOT / "bench" / "baselines"), "floor_app", "bench.baselines.floor_app")
QUICKSTART = App(
    "quickstart",
    str(ROOT / "bench" / "baselines"),
    "quickstart_app",
    "bench.baselines.quickstart_app",
)
# The leanest /sms that stores the message with the SDK (bench/baselines/lean_sdk_app.py).
LEAN_SDK = App(
    "lean-sdk",
    str(ROOT / "bench" / "baselines"),
    "lean_sdk_app",
    "bench.baselines.lean_sdk_app",
)
# The same with its client built during INIT (bench/baselines/lean_init_app.py); its environment
# is the lean SDK app's.
LEAN_INIT = App(
    "lean-sdk", str(ROOT), "bench.baselines.lean_init_app", "bench.baselines.lean_init_app"
)
BASELINES = (FLOOR, QUICKSTART, LEAN_SDK, LEAN_INIT)
SWITCHBOARD = App("switchboard", str(ROOT), "app", "app")
# The apps whose /sms stores the message in the stack's table (one PutItem each).
STORING = (SWITCHBOARD, QUICKSTART, LEAN_SDK, LEAN_INIT)


def env_name(app: App) -> str:
    """Which environment Stack.env gives app: a baseline's own, else Switchboard's."""
    return app.name if app in BASELINES else "switchboard"


@cache
def routes(app: App) -> tuple[str, ...]:
    """The app's route paths, read from the app itself."""
    return tuple(importlib.import_module(app.package).app.routes)


def webhook(app: App, path: str, params: Any = None, *, method: str = "POST") -> dict[str, Any]:
    """A signed Twilio webhook event for path (query included) on the execute-api URL."""
    return twilio_event(
        EXECUTE_API + path, params, auth_token=demo.AUTH_TOKEN, routes=routes(app), method=method
    )


def voice(app: App) -> dict[str, Any]:
    return webhook(app, "/voice", CALL)


def sms(app: App, sid: str | None = None, body: str = "Hello there") -> dict[str, Any]:
    """An inbound SMS webhook; a fresh MessageSid unless one is given."""
    return webhook(
        app,
        "/sms",
        {
            "MessageSid": sid or new_sid("SM"),
            "AccountSid": demo.ACCOUNT_SID,
            "From": "+15105551212",
            "To": demo.NUMBER,
            "Body": body,
            "NumMedia": "0",
        },
    )


def forward(app: App) -> dict[str, Any]:
    """The forward twimlet's first stage (a Dial to PhoneNumber)."""
    return webhook(app, "/twimlets/forward?PhoneNumber=%2B14155550100", CALL)


def send(app: App) -> dict[str, Any]:
    """POST /messages: one message to send now."""
    return api(app, "POST", "/messages", {"to": fresh_recipient(), "body": "Your table is ready"})


def api(app: App, method: str, path: str, payload: Any = None) -> dict[str, Any]:
    """An IAM-authorised API request's event (API Gateway checks IAM before Lambda runs)."""
    return rest_event(
        method,
        EXECUTE_API + path,
        routes=routes(app),
        body=json.dumps(payload) if payload is not None else None,
        headers={"Content-Type": "application/json"},
    )


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def sqs(bodies: list[Any]) -> dict[str, Any]:
    """An SQS batch event with one record per body, each received once."""
    return sqs_event(
        [
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": uuid.uuid4().hex,
                "Body": json.dumps(body),
                "Attributes": {"ApproximateReceiveCount": "1"},
            }
            for body in bodies
        ],
        QUEUE_ARN,
    )


def worker_event(app: App, stack: Stack) -> dict[str, Any]:
    """A one-record queue batch for app's worker; for Switchboard, a queued message it sends."""
    if app is SWITCHBOARD:
        return sqs([{"kind": "send", "payload": {"id": seed_message(stack, "queued")}}])
    if app is QUICKSTART:
        return sqs([{"to": fresh_recipient(), "body": "Your table is ready"}])
    return sqs([{"ping": 1}])


def seed_message(
    stack: Stack, status: str, *, send_at: float | None = None, broadcast_id: str | None = None
) -> str:
    """Write a message record the way the app writes them; returns its id."""
    from chalicelib.aws.storage import Table
    from chalicelib.messaging import messages

    message_id = uuid.uuid4().hex
    record = messages.new_record(
        message_id,
        to=fresh_recipient(),
        sender=demo.NUMBER,
        body="Your table is ready",
        media_urls=[],
        status=status,
        send_at=send_at,
        status_callback=None,
        retention_days=90,
        broadcast_id=broadcast_id,
    )
    Table(TABLE).put(record)
    return message_id


def seed(stack: Stack, item: dict[str, Any]) -> None:
    """Write any item to the app's table."""
    from chalicelib.aws.storage import Table

    Table(TABLE).put(item)


def inbound_count(stack: Stack) -> int:
    """How many inbound messages ("in#…" items) the table holds."""
    pages = (
        stack.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=TABLE,
            Select="COUNT",
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "in#"}},
        )
    )
    return sum(page["Count"] for page in pages)
