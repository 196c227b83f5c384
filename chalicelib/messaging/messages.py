"""Outbound message records: their states, the conditional moves between them, and their views.

scheduled → queued → sending → sent → delivered | undelivered | failed, plus canceled and
opted_out. A move names the states it may come from and is a conditional update, so a record
never moves backwards or out of a terminal state however events race.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
from typing import Any

from chalicelib.aws import jobs
from chalicelib.aws.storage import BY_SID, ConditionFailedError, Table
from chalicelib.core import clock, settings
from chalicelib.core.errors import StorageError
from chalicelib.messaging import pacing

logger = logging.getLogger(__name__)

MAX_BODY = 1600  # Twilio's limit for a concatenated message
# After no clear answer from a create, Twilio's list is searched this much later, and no sooner:
# a create Twilio answered late (or after a 504) must be listed by then.
CHECK_UNCLEAR_AFTER = 60.0
# Our routes that Twilio's status callbacks reach (relative to the app's base URL).
STATUS_CALLBACK = "/status/messages"
CALL_STATUS_CALLBACK = "/status/calls"
ACTIVE = ("scheduled", "queued", "sending")  # kept in the by-state index with a due time
# Not sent yet: a cancel moves these to `canceled` (held: the daily budget, guards/budget.py).
CANCELABLE = ("scheduled", "queued", "held")
TERMINAL = frozenset({"delivered", "undelivered", "failed", "canceled", "opted_out"})
# Where retention starts: a message's terminal states and a call's (calls share move()).
FINAL = TERMINAL | {"completed", "busy", "no-answer"}
# A broadcast is kept this long past its send time plus the retention: its messages end
# within hours of it, and one that ends later pushes the broadcast on (see _keep_broadcast).
BROADCAST_SLACK = 7 * 86400
ORDER = {"scheduled": 0, "queued": 1, "sending": 2, "sent": 3}
# Twilio's MessageStatus -> ours. Twilio's own queue states all mean "Twilio has it".
TWILIO_STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "canceled",
}


def new_id(scope: str | None = None) -> str:
    """A record id: derived from an Idempotency-Key's use (scope) when there is one, so a retry
    of the request finds the record a first run wrote; else random (os.urandom: the uuid
    module costs cold-start time)."""
    if scope:
        return hashlib.sha256(f"record#{scope}".encode()).hexdigest()[:32]
    return os.urandom(16).hex()


def key(message_id: str) -> str:
    """The table key of a message record."""
    return f"msg#{message_id}"


def expires_at(now: float, retention_days: float) -> int:
    """The DynamoDB TTL for a record that ends (or is due) at now: retention counts from there."""
    return math.ceil(now + retention_days * 86400)  # whole seconds, never early


def broadcast_expires_at(due: float, retention_days: float) -> int:
    """The first TTL of a broadcast due at due: past every message's as they normally end."""
    return expires_at(due, retention_days) + BROADCAST_SLACK


def new_record(
    message_id: str,
    *,
    to: str,
    sender: str,
    body: str,
    media_urls: list[str],
    status: str,
    send_at: float | None,
    status_callback: str | None,
    retention_days: float,
    broadcast_id: str | None = None,
    now: float | None = None,
    window: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A message record as first written; window is its quiet hours (timing.stored)."""
    now = clock.now() if now is None else now
    record: dict[str, Any] = {
        "pk": key(message_id),
        "id": message_id,
        "kind": "message",
        "to": to,
        "sender": sender,
        "body": body,
        "media_urls": media_urls,
        "status": status,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "history": [{"status": status, "at": now}],
        # Kept while active, and for the retention after its send time at least; a terminal
        # move counts the retention afresh from then (move()).
        "expires_at": expires_at(max(now, send_at or now), retention_days),
    }
    if send_at is not None:
        record["send_at"] = send_at
    if status_callback:
        # Our id in the URL Twilio calls back: the callback finds its record by key, whether
        # or not the SID has been stored (or ever will be, after an unclear answer).
        joiner = "&" if "?" in status_callback else "?"
        record["status_callback"] = f"{status_callback}{joiner}id={message_id}"
    if window:
        record["window"] = window
    if broadcast_id:
        record["broadcast"] = broadcast_id
        # The broadcast's own TTL as created: a message that outlasts it pushes it on.
        record["broadcast_expires_at"] = broadcast_expires_at(send_at or now, retention_days)
    if status in ACTIVE:
        record["state"] = status
        record["state_at"] = send_at if status == "scheduled" and send_at else now
    return record


def move(
    table: Table,
    message_id: str,
    status: str,
    *,
    sources: tuple[str, ...],
    now: float | None = None,
    due: float | None = None,
    set_fields: dict[str, Any] | None = None,
    remove_fields: tuple[str, ...] = (),
    history: bool = True,
    pk: str | None = None,
    returning: bool = True,
    also: str | None = None,
    also_values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move a record to status if it is in one of sources; returns the updated record.

    due is the by-state index time for an active status (default now); pk names another kind
    of record than a message (calls share the shape). Without returning, the answer is {}:
    DynamoDB then sends no copy of the record back. also is a further condition ANDed to the
    source states' (its values in also_values), such as an owner's mark. A move to a final state
    sets the record's TTL to the retention from now (and keeps a broadcast at least as long).

    Raises:
        ConditionFailedError: the record is absent or in another state (current attached),
            or no source state was given (nothing attached).
    """
    if not sources:
        # Nothing moves from no state; DynamoDB would refuse the empty IN () besides.
        raise ConditionFailedError(None)
    now = clock.now() if now is None else now
    names = {"#status": "status"}
    values: dict[str, Any] = {":status": status, ":now": now}
    sets = ["#status = :status", "updated_at = :now"]
    removes = list(remove_fields)
    if history:
        sets.append("history = list_append(if_not_exists(history, :empty), :entry)")
        values[":empty"] = []
        values[":entry"] = [{"status": status, "at": now}]
    if status in ACTIVE:
        sets += ["#state = :status", "state_at = :due"]
        names["#state"] = "state"
        values[":due"] = now if due is None else due
    else:
        removes += ["#state", "state_at"]
        names["#state"] = "state"
    final = status in FINAL
    if final:
        values[":expires"] = expires_at(now, settings.load().retention_days)
        sets.append("expires_at = :expires")
    for i, (field, value) in enumerate((set_fields or {}).items()):
        names[f"#f{i}"] = field
        values[f":f{i}"] = value
        sets.append(f"#f{i} = :f{i}")
    source_names = []
    for i, source in enumerate(sources):
        values[f":s{i}"] = source
        source_names.append(f":s{i}")
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    condition = f"#status IN ({', '.join(source_names)})"
    if also:
        condition += f" AND ({also})"
        values.update(also_values or {})
    moved = table.update(
        pk or key(message_id),
        expression,
        condition=condition,
        names=names,
        values=values,
        returning=returning or final,
    )
    if final and moved.get("broadcast"):
        _keep_broadcast(table, moved, values[":expires"])
    if final:
        _queue_price_fetch(moved, status, now)  # what Twilio charged, counted once
    return moved if returning else {}


# Final states Twilio bills; the price job (worker.prices.price_job) fetches and counts them.
PRICED = frozenset({"delivered", "undelivered", "failed", "completed"})
FIRST_PRICE_FETCH = 30.0  # seconds after the final state: Twilio fills the price in later


def _queue_price_fetch(record: dict[str, Any], status: str, now: float) -> None:
    """A record reached a final state: queue its price fetch, once per record. Never raises
    (the move stands); a job that could not be queued is logged and that record not counted."""
    if status not in PRICED or not record.get("sid") or "priced" in record:
        return
    payload = {"pk": record["pk"], "sid": record["sid"], "final_at": now}
    try:
        jobs.defer("price", payload, delay=FIRST_PRICE_FETCH, once=f"price:{record['pk']}")
    except jobs.JobQueueError:
        logger.error("could not queue a price fetch", extra={"id": record.get("id")})


def _keep_broadcast(table: Table, record: dict[str, Any], needed: int) -> None:
    """Push the broadcast's TTL past a message of it that ended later than it allows for."""
    if needed <= record.get("broadcast_expires_at", 0):
        return  # the usual case: no write
    with contextlib.suppress(ConditionFailedError):  # gone, or already kept long enough
        table.update(
            f"bcast#{record['broadcast']}",  # broadcasts.key()
            "SET expires_at = :pushed",
            condition="attribute_exists(pk) AND expires_at < :needed",
            values={":pushed": needed + BROADCAST_SLACK, ":needed": needed},
            returning=False,
        )


def try_move(table: Table, message_id: str, status: str, **options: Any) -> dict[str, Any] | None:
    """move(), answering None instead of raising when the record is elsewhere."""
    try:
        return move(table, message_id, status, **options)
    except ConditionFailedError:
        return None


def view(record: dict[str, Any]) -> dict[str, Any]:
    """GET /messages/{id}'s shape, times in UTC with a Z."""
    send_at = record.get("send_at")
    return {
        "id": record["id"],
        "to": record["to"],
        "from": record.get("sender"),
        "status": record["status"],
        "sid": record.get("sid"),
        "error_code": record.get("error_code"),
        "error_message": record.get("error_message"),
        "send_at": clock.iso(send_at) if send_at is not None else None,
        "created_at": clock.iso(record["created_at"]),
        "updated_at": clock.iso(record["updated_at"]),
        "history": [
            {"status": h["status"], "at": clock.iso(h["at"])} for h in record.get("history", [])
        ],
    }


def apply_status_callback(
    table: Table, record: dict[str, Any], twilio_status: str, error_code: str | None
) -> bool:
    """Apply Twilio's MessageStatus to a record, forwards only; True when it moved."""
    status = TWILIO_STATUS.get(twilio_status)
    if status is None:
        return False
    if given_up(record):
        # An unclear create that Twilio did make after all: its callbacks tell the truth.
        moved = try_move(
            table,
            record["id"],
            status,
            sources=("failed",),
            remove_fields=("failure_reason",),
            also="attribute_exists(failure_reason)",
        )
        return moved is not None
    if record["status"] in TERMINAL:
        return False
    current = record["status"]
    if status == "sent":
        if ORDER.get(current, 99) >= ORDER["sent"]:
            return False
        sources: tuple[str, ...] = ("queued", "sending")
    else:
        sources = ("queued", "sending", "sent")
    fields: dict[str, Any] = {}
    if error_code and status in ("failed", "undelivered"):
        fields["error_code"] = _int_or_str(error_code)
    moved = try_move(table, record["id"], status, sources=sources, set_fields=fields)
    return moved is not None


def given_up(record: dict[str, Any]) -> bool:
    """A record we marked failed ourselves (Twilio never said so): Twilio's word still counts."""
    return record["status"] == "failed" and bool(record.get("failure_reason"))


def record_sid(table: Table, record: dict[str, Any], sid: str) -> dict[str, Any] | None:
    """Store the SID Twilio gave a message: `sending` moves to `sent`; a record that a status
    callback already moved on keeps its state and gets the SID. Returns the moved record."""
    sent = try_move(
        table,
        record["id"],
        "sent",
        sources=("sending",),
        set_fields={"sid": sid},
        remove_fields=("ambiguous",),
    )
    if sent is None:
        learn_sid(table, record, sid)
    return sent


def sid_taken(table: Table, sid: str) -> bool:
    """Whether one of our records already holds this SID (through the SID index, which can
    lag a second behind a write: a SID stored that recently is not seen)."""
    items, _ = table.query(BY_SID, "sid", sid, limit=1)
    return bool(items)


def learn_sid(table: Table, record: dict[str, Any], sid: str) -> None:
    """Store a SID the record does not have yet (never replace one)."""
    table.update(
        record["pk"],
        "SET sid = if_not_exists(sid, :sid)",
        values={":sid": sid},
        returning=False,
    )


def _int_or_str(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def queue_message(
    table: Table,
    message_id: str,
    *,
    to: str,
    sender: str,
    body: str,
    media_urls: list[str],
    status_callback: str | None,
    retention_days: float,
) -> bool:
    """Record a message as queued and hand it to the worker, once per id; True when new.

    Raises:
        StorageError: the record could not be written.
    """
    record = new_record(
        message_id,
        to=to,
        sender=sender,
        body=body,
        media_urls=media_urls,
        status="queued",
        send_at=None,
        status_callback=status_callback,
        retention_days=retention_days,
    )
    try:
        table.put(record, condition="attribute_not_exists(pk)")
    except ConditionFailedError as exc:
        if (exc.current or {}).get("status") != "queued":
            return False
    enqueue_send(table, message_id)
    return True


def send_job(message_id: str, slot: float, now: float) -> dict[str, Any]:
    """A send job's payload; a slot further away than SQS can delay (900 s) rides along, and
    the worker holds a job that comes before it. Nearer ones SQS holds to the second."""
    if slot - now > jobs.MAX_DELAY:
        return {"id": message_id, "slot": slot}
    return {"id": message_id}


def enqueue_send(table: Table, message_id: str, *, earliest: float = 0.0) -> None:
    """Hand a queued (or unconfirmed) message to the worker at its pacing slot.

    A failure is logged, never raised: the record says what to do, and the dispatcher's stale
    sweep (queued) or reconcile (sending) picks it up within minutes.
    """
    try:
        now = clock.now()
        wait = pacing.delay(table, settings.load().send_rate, now, earliest=earliest)
        # SQS delays are whole seconds: a slot rounds to the nearest (as the dispatcher's do).
        jobs.defer("send", send_job(message_id, now + wait, now), delay=round(wait))
    except (jobs.JobQueueError, StorageError):
        logger.error("could not hand a message to the worker", extra={"id": message_id})
