"""Calls placed through POST /calls: their records and the status callbacks that move them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock
from chalicelib.core.errors import NotFoundError, StorageError, TryLaterError
from chalicelib.messaging import deps, messages
from chalicelib.telephony.twilio_rest import NOT_ACCEPTED, REFUSED, TwilioError, TwilioRest

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
ORDER = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
EVENTS = ["initiated", "ringing", "answered", "completed"]
# The by-state index entry of a call placed without a clear answer, for reconcile.
UNCONFIRMED = "call_unconfirmed"
RETRY_AFTER = 5  # seconds, when Twilio answered 429 or 503


def key(call_id: str) -> str:
    """The table key of a call record."""
    return f"call#{call_id}"


def place(
    ctx: ApiContext, *, to: str, sender: str, url: str | None, twiml: str | None
) -> tuple[int, dict[str, Any]]:
    """Record the call and place it through Twilio: (201, the call) once Twilio answers.

    Without a clear answer (a timeout, a 5xx, a dropped connection) the call may be ringing:
    202 with `unconfirmed`, never a second call; its status callbacks (routed by our id) or
    reconcile settle it. A 429 or 503 placed nothing: the record goes and TryLaterError says
    when to come back, so a retry with the same Idempotency-Key places it.

    Raises:
        TwilioError: Twilio refused the call (recorded failed).
        TryLaterError: Twilio did not take it now; nothing is kept.
    """
    table = ctx.table
    call_id = messages.new_id(ctx.idempotency_scope)
    # Credentials before the record: once it is written a failure no longer frees the key.
    twilio = deps.twilio(ctx.settings)
    now = clock.now()
    record = {
        "pk": key(call_id),
        "id": call_id,
        "kind": "call",
        "to": to,
        "sender": sender,
        "status": "queued",
        "created_at": now,
        "updated_at": now,
        "history": [{"status": "queued", "at": now}],
        "expires_at": messages.expires_at(now, ctx.settings.retention_days),
        "writer": messages.new_id(),
    }
    ctx.committed = True
    try:
        table.put(record, condition="attribute_not_exists(pk)")
    except ConditionFailedError as exc:
        current = exc.current or table.get(record["pk"])
        if current is not None and current.get("writer") != record["writer"]:
            return _resume(table, current)
    callback = ctx.callback_url(messages.CALL_STATUS_CALLBACK)
    try:
        result = twilio.place_call(
            to=to,
            sender=sender,
            url=url,
            twiml=twiml,
            # Our id in the URL: callbacks find the record even before its SID is stored.
            status_callback=f"{callback}?id={call_id}" if callback else None,
        )
    except TwilioError as exc:
        return _not_placed(table, call_id, to, sender, exc)
    try:
        table.update(
            key(call_id), "SET sid = :sid", values={":sid": result["sid"]}, returning=False
        )
    except StorageError:
        # The call is ringing: that is the answer. Its callbacks (by our id) store the SID.
        logger.error(
            "could not store the call's SID", extra={"id": call_id, "call_sid": result["sid"]}
        )
    logger.info("call placed", extra={"id": call_id, "call_sid": result["sid"]})
    return 201, {"id": call_id, **result}


def _resume(table: Table, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Answer a retry whose first run wrote this call: never place it again.

    Without a SID or a clear outcome the call may be ringing: it becomes unconfirmed, settled
    by its callbacks or by reconcile from Twilio's Calls list.
    """
    view = {"id": record["id"], "to": record["to"], "from": record["sender"]}
    if record.get("sid"):
        return 201, {**view, "sid": record["sid"], "status": record["status"]}
    if record["status"] in TERMINAL:
        return 200, messages.view(record)
    if record.get("state") != UNCONFIRMED:
        _unconfirmed(table, record["id"], "outcome unknown")
    return 202, {**view, "status": "queued", "unconfirmed": True}


def _unconfirmed(table: Table, call_id: str, reason: str) -> None:
    """Mark a call placed without a clear answer, for its callbacks or reconcile to settle."""
    try:
        table.update(
            key(call_id),
            "SET ambiguous = :t, #state = :state, state_at = :now, error_message = :m",
            condition="attribute_not_exists(sid)",
            names={"#state": "state"},
            values={":t": True, ":state": UNCONFIRMED, ":now": clock.now(), ":m": reason},
            returning=False,
        )
    except ConditionFailedError:
        pass  # a callback stored its SID first: settled
    except StorageError:
        logger.error("could not mark a call unconfirmed", extra={"id": call_id})


def _not_placed(
    table: Table, call_id: str, to: str, sender: str, exc: TwilioError
) -> tuple[int, dict[str, Any]]:
    if exc.outcome == REFUSED or exc.credentials_refused:
        fields = {"error_code": exc.code, "error_message": exc.message}
        try:
            _move(table, call_id, "failed", now=clock.now(), fields=fields)
        except StorageError:
            logger.error("could not record Twilio's refusal of a call", extra={"id": call_id})
        raise exc
    if exc.outcome == NOT_ACCEPTED:
        # Nothing was placed: the record goes, so the retry (same key, same id) places it.
        table.delete(key(call_id))
        raise TryLaterError(
            "Twilio is not taking calls right now; try again", retry_after=RETRY_AFTER
        ) from exc
    _unconfirmed(table, call_id, exc.message)
    logger.warning("no clear answer from Twilio for a call", extra={"id": call_id})
    return 202, {"id": call_id, "status": "queued", "to": to, "from": sender, "unconfirmed": True}


def learn_sid(table: Table, record: dict[str, Any], sid: str) -> None:
    """Store the SID a status callback carries when the create's answer never came."""
    table.update(
        record["pk"],
        "SET sid = if_not_exists(sid, :sid) REMOVE ambiguous, #state, state_at",
        names={"#state": "state"},
        values={":sid": sid},
        returning=False,
    )


def settle(table: Table, twilio: TwilioRest, record: dict[str, Any], now: float) -> str:
    """Settle an unconfirmed call from Twilio's Calls list: "found" or "not_placed".

    Raises:
        TwilioError: the list could not be read (try again later).
    """
    found = twilio.find_call(
        to=record["to"],
        sender=record["sender"],
        since=record["created_at"],
        taken=lambda sid: messages.sid_taken(table, sid),
    )
    if found is None:
        _move(
            table,
            record["id"],
            "failed",
            now=now,
            fields={"failure_reason": "not_placed", "ambiguous": False},
        )
        return "not_placed"
    learn_sid(table, record, found["sid"])
    current = table.get(record["pk"]) or record
    apply_status_callback(table, current, found["status"], None)
    return "found"


def _move(
    table: Table, call_id: str, status: str, *, now: float, fields: dict[str, Any] | None = None
) -> bool:
    """Move a call forwards only: from a state ranked before status."""
    sources = tuple(s for s, rank in ORDER.items() if rank < ORDER.get(status, 99))
    moved = messages.try_move(
        table, call_id, status, sources=sources, now=now, set_fields=fields, pk=key(call_id)
    )
    return moved is not None


def apply_status_callback(
    table: Table, record: dict[str, Any], status: str, error_code: str | None
) -> bool:
    """Move a call record forwards to Twilio's CallStatus; True when it moved."""
    if status not in ORDER and status not in TERMINAL:
        return False
    fields = {"error_code": int(error_code)} if error_code and error_code.isdigit() else None
    if messages.given_up(record):
        # Reconcile found no call and said not_placed; Twilio listed it later and calls back.
        moved = messages.try_move(
            table,
            record["id"],
            status,
            sources=("failed",),
            set_fields=fields,
            remove_fields=("failure_reason",),
            pk=key(record["id"]),
            also="attribute_exists(failure_reason)",
        )
        return moved is not None
    return _move(table, record["id"], status, now=clock.now(), fields=fields)


def get_call(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /calls/{id}.

    Raises:
        NotFoundError: no such call.
    """
    record = ctx.table.get(key(ctx.path["id"]))
    if record is None or record.get("kind") != "call":
        raise NotFoundError("no call with this id")
    return 200, messages.view(record)
