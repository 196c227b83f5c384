"""An immediate send through POST /messages: write the record, send, answer with Twilio's truth,
and answer a retried request from the record its first run wrote, never creating again."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock
from chalicelib.core.errors import StorageError
from chalicelib.messaging import messages, optouts, status
from chalicelib.telephony.twilio_rest import NOT_ACCEPTED, REFUSED, TwilioError, TwilioRest

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

# An immediate send Twilio did not take (429, 503) is retried by the worker after this.
RETRY_NOT_ACCEPTED = 5.0
# After no clear answer, the worker looks the message up in Twilio's list this much later.
CHECK_AMBIGUOUS_AFTER = messages.CHECK_UNCLEAR_AFTER


def write(table: Table, record: dict[str, Any], ctx: ApiContext) -> dict[str, Any] | None:
    """Write a new record; returns the record a first run of this request wrote, if any.

    From here on the request is committed: a failure no longer frees the Idempotency-Key.
    """
    writer = record["writer"] = messages.new_id()
    ctx.committed = True
    try:
        table.put(record, condition="attribute_not_exists(pk)")
    except ConditionFailedError as exc:
        current = exc.current or table.get(record["pk"])
        if current is None or current.get("writer") == writer:
            return None  # our own write, applied, its answer lost and retried by the SDK
        return current
    return None


def resume(table: Table, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Answer a retry whose first run wrote this record, without ever creating again.

    A record still `sending` without a SID may or may not be at Twilio: the worker looks it up
    before it would send it (as after any unclear answer).
    """
    message_id = record["id"]
    view = {"id": message_id, "to": record["to"], "from": record["sender"]}
    status = record["status"]
    if status in ("sent", "delivered", "undelivered") and record.get("sid"):
        return 201, {**view, "sid": record["sid"], "status": "sent"}
    if status == "scheduled":
        return 202, {
            "id": message_id,
            "status": "scheduled",
            "send_at": clock.iso(record["send_at"]),
        }
    if status == "queued":
        return 202, {**view, "status": "queued"}
    if status == "sending":
        if not record.get("ambiguous"):
            check_later(table, record)
        return 202, {**view, "status": "sending", "unconfirmed": True}
    return 200, messages.view(record)


def check_later(table: Table, record: dict[str, Any], *, reason: str | None = None) -> None:
    """Flag a send whose outcome is unknown and have the worker look it up before any resend.

    A storage failure here is logged, not raised: the record stays `sending`, and reconcile
    looks it up in Twilio's list once its lease has passed.
    """
    message_id = record["id"]
    try:
        # state_at is reconcile's mark: it leaves the record to the worker until then + 10 min.
        table.update(
            record["pk"],
            "SET ambiguous = :t, error_message = :m, state_at = :check",
            condition="#status = :sending",
            names={"#status": "status"},
            values={
                ":t": True,
                ":sending": "sending",
                ":m": reason or "outcome unknown",
                ":check": clock.now() + CHECK_AMBIGUOUS_AFTER,
            },
            returning=False,
        )
    except ConditionFailedError:
        return  # it moved on (a callback, the worker): nothing to check
    except StorageError:
        logger.error(
            "could not flag an unconfirmed send; reconcile settles it", extra={"id": message_id}
        )
        return
    messages.enqueue_send(table, message_id, earliest=CHECK_AMBIGUOUS_AFTER)


def send_now(
    table: Table, record: dict[str, Any], twilio: TwilioRest
) -> tuple[int, dict[str, Any]]:
    """Send at once; what Twilio did not clearly take goes to the worker, never to the caller.

    Accepted: 201 `sent`. Refused (4xx): recorded and raised, the caller gets Twilio's answer.
    Not accepted (429, 503): 202 `queued`, sent by the worker at its pace. Ambiguous (no answer,
    a dropped connection, another 5xx): 202 `sending` with `unconfirmed`, and the worker looks
    the message up in Twilio's list before it would ever send it again. Either 202 is kept with
    the Idempotency-Key, so a retry replays it instead of sending twice. Storage failing after
    the create never turns into an error: Twilio's answer is the truth the caller gets, and the
    callbacks (routed by our id) or reconcile bring the record up to date.
    """
    message_id = record["id"]
    try:
        result = twilio.send_message(
            to=record["to"],
            body=record["body"] or None,
            sender=record["sender"],
            media_urls=record["media_urls"] or None,
            status_callback=record.get("status_callback"),
        )
    except TwilioError as exc:
        return _not_sent(table, record, exc)
    try:
        sent = messages.record_sid(table, record, result["sid"])
        if sent is not None:
            status.apply_pending(table, sent)
    except StorageError:
        logger.error(
            "could not store the SID Twilio gave; callbacks or reconcile will",
            extra={"id": message_id, "message_sid": result["sid"]},
        )
    logger.info("message sent", extra={"id": message_id, "message_sid": result["sid"]})
    return 201, {
        "id": message_id,
        "sid": result["sid"],
        "status": "sent",
        "to": result["to"],
        "from": result["from"],
    }


def _not_sent(table: Table, record: dict[str, Any], exc: TwilioError) -> tuple[int, dict[str, Any]]:
    message_id = record["id"]
    if exc.outcome == REFUSED or exc.credentials_refused:
        outcome = "opted_out" if exc.code == 21610 else "failed"
        try:
            if outcome == "opted_out":
                optouts.record_opt_out(table, record["to"], source="twilio_21610")
            messages.try_move(
                table,
                message_id,
                outcome,
                sources=("sending",),
                set_fields={"error_code": exc.code, "error_message": exc.message},
            )
        except StorageError:
            # Left `sending`: reconcile finds it absent at Twilio and tries it again, where
            # Twilio refuses it again. Never a message the caller was told failed, sent.
            logger.error("could not record Twilio's refusal", extra={"id": message_id})
        raise exc
    view = {"id": message_id, "to": record["to"], "from": record["sender"]}
    if exc.outcome == NOT_ACCEPTED:
        delay = RETRY_NOT_ACCEPTED
        try:
            messages.move(
                table, message_id, "queued", sources=("sending",), due=clock.now() + delay
            )
        except (ConditionFailedError, StorageError):
            # Still `sending`, as after an unclear answer: looked up before any resend.
            check_later(table, record)
            return 202, {**view, "status": "sending", "unconfirmed": True}
        logger.info("Twilio did not take the message now; queued", extra={"id": message_id})
        messages.enqueue_send(table, message_id, earliest=delay)
        return 202, {**view, "status": "queued"}
    logger.warning("no clear answer from Twilio; the worker checks", extra={"id": message_id})
    check_later(table, record, reason=exc.message)
    return 202, {**view, "status": "sending", "unconfirmed": True}
