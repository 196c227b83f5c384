"""Status callbacks from Twilio (signed webhooks): move message and call records forwards."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib import calls, deps, messages, twiml
from chalicelib.storage import BY_SID

if TYPE_CHECKING:
    from chalicelib.parameters import Parameters
    from chalicelib.webhook_security import VerifiedRequest

logger = logging.getLogger(__name__)


def _record_for(sid: str | None) -> dict | None:
    if not sid:
        return None
    table = deps.table()
    items, _ = table.query(BY_SID, "sid", sid, limit=1)
    return table.get(items[0]["pk"]) if items else None


def message_status(request: VerifiedRequest, parameters: Parameters) -> str:
    """/status/messages: apply MessageStatus; an unknown SID is answered 200 and logged."""
    sid = request.twilio_param("MessageSid") or request.twilio_param("SmsSid")
    status = request.twilio_param("MessageStatus") or request.twilio_param("SmsStatus") or ""
    record = _record_for(sid)
    if record is None or record.get("kind") != "message":
        logger.warning("status callback for an unknown message", extra={"message_sid": sid})
    elif messages.apply_status_callback(
        deps.table(), record, status, request.twilio_param("ErrorCode")
    ):
        logger.info("message status", extra={"id": record["id"], "status": status})
    else:
        logger.info("status callback ignored", extra={"id": record["id"], "status": status})
    return twiml.message_reply(None)


def call_status(request: VerifiedRequest, parameters: Parameters) -> str:
    """/status/calls: apply CallStatus; an unknown SID is answered 200 and logged."""
    sid = request.twilio_param("CallSid")
    status = request.twilio_param("CallStatus") or ""
    record = _record_for(sid)
    if record is None or record.get("kind") != "call":
        logger.warning("status callback for an unknown call", extra={"call_sid": sid})
    elif not calls.apply_status_callback(
        deps.table(), record, status, request.twilio_param("ErrorCode")
    ):
        logger.info("status callback ignored", extra={"id": record["id"], "status": status})
    return twiml.message_reply(None)
