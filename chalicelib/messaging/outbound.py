"""Outbound messages and calls for the JSON API: validate, record, then send or schedule."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.api import validation
from chalicelib.api.validation import ValidationError
from chalicelib.aws import jobs
from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock
from chalicelib.core.errors import ConflictError, NotFoundError, StorageError
from chalicelib.messaging import calls, deps, messages, optouts, pacing, status, timing
from chalicelib.telephony import twiml
from chalicelib.telephony.twilio_rest import NOT_ACCEPTED, REFUSED, TwilioError, TwilioRest

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

MAX_MEDIA = 10  # Twilio's limit of MediaUrl per message
# An immediate send whose pacing slot is further away than this goes to the worker instead.
IMMEDIATE_SLACK = 1.0
# An immediate send Twilio did not take (429, 503) is retried by the worker after this.
RETRY_NOT_ACCEPTED = 5.0
# After no clear answer, the worker looks the message up in Twilio's list this much later.
CHECK_AMBIGUOUS_AFTER = messages.CHECK_UNCLEAR_AFTER
MAX_TWIML = 4000  # Twilio's limit for the Twiml parameter
TIMING_FIELDS = ("send_at", "timezone", "not_before", "not_after")
MESSAGE_FIELDS = ("to", "body", "from", "media_urls", *TIMING_FIELDS)
CALL_FIELDS = ("to", "from", "url", "twiml", "say")


class Content(NamedTuple):
    """A validated message body and media."""

    body: str
    media_urls: list[str]


def content(payload: dict[str, Any]) -> Content:
    """The body and media of a message payload.

    Raises:
        ValidationError: empty without media, too long, or bad media URLs.
    """
    body = validation.string(payload, "body") or ""
    media_urls = validation.url_list(payload, "media_urls", most=MAX_MEDIA)
    if len(body) > messages.MAX_BODY:
        raise ValidationError(f"body must be at most {messages.MAX_BODY} characters", "body")
    if not body.strip() and not media_urls:
        raise ValidationError("body must not be empty unless media_urls are given", "body")
    return Content(body, media_urls)


def send_time(payload: dict[str, Any]) -> float | None:
    """When a message may go out: None for now, else an epoch instant (quiet hours applied).

    Raises:
        ValidationError: bad send_at, timezone or window, or a time out of bounds.
    """
    tz = timing.zone(validation.string(payload, "timezone"))
    window = timing.window(payload, tz)
    now = clock.utcnow()
    requested = None
    if payload.get("send_at") is not None:
        requested = timing.parse_send_at(payload["send_at"], tz)
        timing.check_lead(requested, now)
    if window is not None:
        moved = timing.next_opening(requested or now, window)
        if requested is not None or moved != now:
            return moved.timestamp()
    return requested.timestamp() if requested is not None else None


def quiet_hours(payload: dict[str, Any]) -> dict[str, str] | None:
    """The payload's quiet-hours window as the record keeps it (checked again at every send).

    Raises:
        ValidationError: bad timezone or window.
    """
    window = timing.window(payload, timing.zone(validation.string(payload, "timezone")))
    return timing.stored(window) if window is not None else None


DEFAULT_ALLOWED_PREFIXES = ("+1",)  # NANP: the US and Canada, where a long code sends


def allowed_prefixes(ctx: ApiContext) -> tuple[str, ...] | None:
    """Destination prefixes from outbound/allowed_prefixes (default +1); None allows all ("*").

    A toll-fraud guard: a leaked IAM key, or a bug upstream, must not be able to call or text
    premium numbers abroad. Twilio's Geo Permissions are the second line.
    """
    raw = ctx.parameters.optional("outbound/allowed_prefixes")
    if raw is None:
        return DEFAULT_ALLOWED_PREFIXES
    prefixes = tuple(p.strip() for p in raw.split(",") if p.strip())
    return None if "*" in prefixes else prefixes


def check_destination(ctx: ApiContext, to: str, field: str = "to") -> None:
    """Refuse a destination outside the allowed prefixes.

    Raises:
        ValidationError: naming the field and the parameter that allows it.
    """
    prefixes = allowed_prefixes(ctx)
    if prefixes is not None and not to.startswith(prefixes):
        raise ValidationError(
            f"destinations outside {', '.join(prefixes)} are not allowed; add the prefix to "
            "the parameter outbound/allowed_prefixes",
            field,
        )


def default_sender(ctx: ApiContext, *, for_calls: bool) -> str:
    """twilio/default_from, which must be a number to place calls.

    Raises:
        ValidationError: naming from, when there is no usable default.
    """
    default = ctx.parameters.optional("twilio/default_from")
    if default and for_calls and not validation.E164.fullmatch(default):
        raise ValidationError(
            "from is required: the default sender is a Messaging Service, which cannot call",
            "from",
        )
    if not default:
        raise ValidationError("from is required: parameter twilio/default_from is not set", "from")
    return default


def send_message(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """POST /messages: send now (201 with Twilio's SID) or schedule (202).

    Raises:
        ValidationError: bad input, naming the field.
        ConflictError: the recipient opted out.
        TwilioError: Twilio refused or failed an immediate send.
    """
    validation.only_keys(payload, MESSAGE_FIELDS)
    to = str(validation.phone_number(payload, "to", required=True))
    body, media_urls = content(payload)
    send_at = send_time(payload)
    window = quiet_hours(payload)
    sender = validation.sender(payload) or default_sender(ctx, for_calls=False)
    check_destination(ctx, to)
    table = ctx.table
    if optouts.is_opted_out(table, to):
        raise ConflictError("the recipient has opted out", reason="opted_out")
    message_id = messages.new_id(ctx.idempotency_scope)
    wait = 0.0
    twilio = None
    if send_at is None:
        # An immediate send takes a pacing slot like any other; beyond a second away, the
        # worker sends it at its slot instead of this request exceeding the rate.
        wait = pacing.delay(table, ctx.settings.send_rate, clock.now())
        if wait <= IMMEDIATE_SLACK:
            # Credentials before the record: once it is written, a failure must not free the
            # key (the create may have happened), so nothing that can fail may sit between.
            twilio = deps.twilio(ctx.settings)
    state = "scheduled" if send_at is not None else "queued" if twilio is None else "sending"
    record = messages.new_record(
        message_id,
        to=to,
        sender=sender,
        body=body,
        media_urls=media_urls,
        status=state,
        send_at=send_at,
        status_callback=ctx.callback_url(messages.STATUS_CALLBACK),
        retention_days=ctx.settings.retention_days,
        window=window,
    )
    if state == "sending":
        now = record["created_at"]
        record.update(
            {
                "history": [{"status": "queued", "at": now}, {"status": "sending", "at": now}],
                "attempts": 1,
                "attempt_started_at": now,
                "first_attempt_at": now,
                "origin": "api",
            }
        )
    existing = _write(table, record, ctx)
    if existing is not None:
        return _resume(table, existing)
    if state == "scheduled":
        logger.info("message scheduled", extra={"id": message_id})
        return 202, {"id": message_id, "status": "scheduled", "send_at": clock.iso(send_at)}
    if state == "queued":
        try:
            now = record["created_at"]
            jobs.defer("send", messages.send_job(message_id, now + wait, now), delay=wait)
        except jobs.JobQueueError:
            logger.error("could not hand a message to the worker", extra={"id": message_id})
        logger.info("message queued at its pacing slot", extra={"id": message_id})
        return 202, {"id": message_id, "status": "queued", "to": to, "from": sender}
    assert twilio is not None
    return _send_now(table, record, twilio)


def _write(table: Table, record: dict[str, Any], ctx: ApiContext) -> dict[str, Any] | None:
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


def _resume(table: Table, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
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
            _check_later(table, record)
        return 202, {**view, "status": "sending", "unconfirmed": True}
    return 200, messages.view(record)


def _check_later(table: Table, record: dict[str, Any], *, reason: str | None = None) -> None:
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


def _send_now(
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
            _check_later(table, record)
            return 202, {**view, "status": "sending", "unconfirmed": True}
        logger.info("Twilio did not take the message now; queued", extra={"id": message_id})
        messages.enqueue_send(table, message_id, earliest=delay)
        return 202, {**view, "status": "queued"}
    logger.warning("no clear answer from Twilio; the worker checks", extra={"id": message_id})
    _check_later(table, record, reason=exc.message)
    return 202, {**view, "status": "sending", "unconfirmed": True}


def get_message(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /messages/{id}.

    Raises:
        NotFoundError: no such message.
    """
    record = ctx.table.get(messages.key(ctx.path["id"]))
    if record is None or record.get("kind") != "message":
        raise NotFoundError("no message with this id")
    return 200, messages.view(record)


def cancel_message(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """DELETE /messages/{id}: cancel a scheduled or queued message (again: still 200).

    Raises:
        NotFoundError: no such message.
        ConflictError: it is already sending or beyond.
    """
    message_id = ctx.path["id"]
    try:
        record = messages.move(ctx.table, message_id, "canceled", sources=("scheduled", "queued"))
    except ConditionFailedError as exc:
        record = exc.current or ctx.table.get(messages.key(message_id))
        if record is None or record.get("kind") != "message":
            raise NotFoundError("no message with this id") from None
        if record["status"] != "canceled":
            raise ConflictError(
                f"a message that is {record['status']} cannot be canceled",
                reason="not_cancelable",
                status=record["status"],
            ) from None
    return 200, messages.view(record)


def place_call(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """POST /calls: place a call that runs url, twiml or say (default: this app's /voice).

    Raises:
        ValidationError: bad input, naming the field.
        TwilioError: Twilio refused or failed.
    """
    validation.only_keys(payload, CALL_FIELDS)
    to = str(validation.phone_number(payload, "to", required=True))
    given = [field for field in ("url", "twiml", "say") if payload.get(field) is not None]
    if len(given) > 1:
        raise ValidationError("give only one of url, twiml and say", given[1])
    url = validation.string(payload, "url")
    document = validation.string(payload, "twiml")
    say = validation.string(payload, "say")
    if url is not None and not validation.HTTP_URL.fullmatch(url):
        raise ValidationError("url must be an absolute http(s) URL", "url")
    if say is not None:
        if not say.strip():
            raise ValidationError("say must not be empty", "say")
        document = twiml.say(say)
    if document is not None and not document.strip():
        raise ValidationError("twiml must not be empty", "twiml")
    if document is not None and len(document) > MAX_TWIML:
        field = "say" if say is not None else "twiml"
        raise ValidationError(f"{field} makes TwiML over {MAX_TWIML} characters", field)
    if document is None and url is None:
        if not ctx.base_url:
            raise ValidationError(
                "url is required when the app's public URL is unknown (set SWITCHBOARD_PUBLIC_URL)",
                "url",
            )
        url = ctx.base_url + "/voice"
    sender = validation.phone_number(payload, "from") or default_sender(ctx, for_calls=True)
    check_destination(ctx, to)
    return calls.place(ctx, to=to, sender=sender, url=url, twiml=document)
