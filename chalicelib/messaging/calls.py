"""Calls placed through POST /calls: their records and the status callbacks that move them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.aws.storage import Table
from chalicelib.core import clock
from chalicelib.core.errors import NotFoundError
from chalicelib.messaging import deps, messages
from chalicelib.telephony.twilio_rest import TwilioError

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})
ORDER = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
EVENTS = ["initiated", "ringing", "answered", "completed"]


def key(call_id: str) -> str:
    """The table key of a call record."""
    return f"call#{call_id}"


def place(
    ctx: ApiContext, *, to: str, sender: str, url: str | None, twiml: str | None
) -> dict[str, Any]:
    """Record the call, place it through Twilio, and store its SID.

    Raises:
        TwilioError: Twilio refused or failed (the record says so).
    """
    table = ctx.table
    call_id = messages.new_id()
    now = clock.now()
    table.put(
        {
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
        },
        condition="attribute_not_exists(pk)",
    )
    try:
        result = deps.twilio(ctx.settings).place_call(
            to=to,
            sender=sender,
            url=url,
            twiml=twiml,
            status_callback=ctx.callback_url(messages.CALL_STATUS_CALLBACK),
        )
    except TwilioError as exc:
        _move(
            table,
            call_id,
            "failed",
            now=clock.now(),
            fields={"error_code": exc.code, "error_message": exc.message},
        )
        raise
    table.update(key(call_id), "SET sid = :sid", values={":sid": result["sid"]}, returning=False)
    logger.info("call placed", extra={"id": call_id, "call_sid": result["sid"]})
    return {"id": call_id, **result}


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
