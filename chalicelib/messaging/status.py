"""Status callbacks from Twilio (signed webhooks): move message and call records forwards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.aws.storage import BY_SID, Table
from chalicelib.core import clock
from chalicelib.messaging import calls, deps, messages
from chalicelib.telephony import twiml
from chalicelib.webhooks import replay

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)


def _record_for(sid: str | None) -> dict | None:
    if not sid:
        return None
    table = deps.table()
    items, _ = table.query(BY_SID, "sid", sid, limit=1)
    return table.get(items[0]["pk"]) if items else None


def message_status(request: VerifiedRequest, parameters: Parameters) -> str:
    """/status/messages: apply MessageStatus; an unknown message is answered 200 and logged.

    The message is found by our id in the callback URL, so a callback that overtakes the SID's
    write (or follows a send whose answer never came) lands at once; the SID index, and the
    pending callbacks below, serve messages sent before ids were in the URL.
    """
    sid = replay.sid(request, ("MessageSid", "SmsSid"), ("SM", "MM"))
    if sid is None:
        logger.warning("status callback without a well-formed MessageSid ignored")
        return twiml.message_reply(None)
    table = deps.table()
    with replay.once(table, request) as first:
        if first:
            _message_status(request, table, sid)
    return twiml.message_reply(None)


def _message_status(request: VerifiedRequest, table: Table, sid: str) -> None:
    status = request.twilio_param("MessageStatus") or request.twilio_param("SmsStatus") or ""
    error_code = request.twilio_param("ErrorCode")
    message_id = request.query.get("id")
    record = table.get(messages.key(message_id)) if message_id else _record_for(sid)
    if record is None and not message_id:
        # Without our id, Twilio can call back before the sender has stored the SID it just
        # got: keep the callback a day, to apply when the SID lands (see apply_pending).
        logger.warning("status callback for an unknown message", extra={"message_sid": sid})
        _keep_pending(sid, status, error_code)
    elif record is None or record.get("kind") != "message":
        logger.warning("status callback for an unknown message", extra={"message_sid": sid})
    else:
        if not record.get("sid"):
            messages.learn_sid(table, record, sid)
        if messages.apply_status_callback(table, record, status, error_code):
            logger.info("message status", extra={"id": record["id"], "status": status})
        else:
            logger.info("status callback ignored", extra={"id": record["id"], "status": status})


def call_status(request: VerifiedRequest, parameters: Parameters) -> str:
    """/status/calls: apply CallStatus; an unknown call is answered 200 and logged.

    The call is found by our id in the callback URL (signed with it), so a callback that
    overtakes the SID's write, or follows a create that got no clear answer, still lands; the
    SID index serves callbacks of calls placed before ids were in the URL.
    """
    sid = replay.sid(request, ("CallSid",), ("CA",))
    if sid is None:
        logger.warning("status callback without a well-formed CallSid ignored")
        return twiml.message_reply(None)
    table = deps.table()
    with replay.once(table, request) as first:
        if first:
            _call_status(request, table, sid)
    return twiml.message_reply(None)


def _call_status(request: VerifiedRequest, table: Table, sid: str) -> None:
    status = request.twilio_param("CallStatus") or ""
    call_id = request.query.get("id")
    record = table.get(calls.key(call_id)) if call_id else _record_for(sid)
    if record is None or record.get("kind") != "call":
        logger.warning("status callback for an unknown call", extra={"call_sid": sid})
        return
    if not record.get("sid"):
        calls.learn_sid(table, record, sid)
    if not calls.apply_status_callback(table, record, status, request.twilio_param("ErrorCode")):
        logger.info("status callback ignored", extra={"id": record["id"], "status": status})


PENDING_TTL = 86400


def _pending_key(sid: str) -> str:
    return f"cb#{sid}"


def _keep_pending(sid: str, status: str, error_code: str | None) -> None:
    entry = {"status": status, "error_code": error_code or ""}
    deps.table().update(
        _pending_key(sid),
        "SET callbacks = list_append(if_not_exists(callbacks, :empty), :entry), expires_at = :x",
        values={":empty": [], ":entry": [entry], ":x": int(clock.now() + PENDING_TTL)},
        returning=False,
    )


def apply_pending(table: Table, record: dict[str, Any]) -> None:
    """Apply callbacks that arrived for record's SID before the SID was stored."""
    sid = record.get("sid")
    pending = table.get(_pending_key(sid)) if sid else None
    if not pending:
        return
    for entry in pending.get("callbacks", []):
        current = table.get(record["pk"]) or record
        messages.apply_status_callback(table, current, entry["status"], entry["error_code"] or None)
    table.delete(_pending_key(sid))
