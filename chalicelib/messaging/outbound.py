"""Outbound messages and calls for the JSON API: validate, record, then send or schedule."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.api import validation
from chalicelib.api.validation import ValidationError
from chalicelib.aws import jobs
from chalicelib.aws.storage import ConditionFailedError
from chalicelib.core import clock
from chalicelib.core.errors import ConflictError, NotFoundError
from chalicelib.guards import budget, call_targets, destinations, velocity
from chalicelib.messaging import calls, deps, immediate, messages, optouts, pacing, timing
from chalicelib.telephony import twiml

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

MAX_MEDIA = 10  # Twilio's limit of MediaUrl per message
# An immediate send whose pacing slot is further away than this goes to the worker instead.
IMMEDIATE_SLACK = 1.0
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


def check_destination(
    ctx: ApiContext,
    to: str,
    field: str = "to",
    *,
    url: str | None = None,
    twiml: str | None = None,
    twiml_field: str = "twiml",
) -> None:
    """Refuse what the destination policy refuses: to, and a call's TwiML and twimlet URL.

    Raises:
        ValidationError: naming the field, with the policy's reason.
    """
    policy = destinations.Policy.from_parameters(ctx.parameters)
    destinations.require(policy.check(to), field, "api")
    if twiml is not None:
        destinations.require(call_targets.twiml_refusal(policy, twiml), twiml_field, "api")
    if url is not None:
        destinations.require(call_targets.url_refusal(policy, url), "url", "api")


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
    if send_at is None:
        budget.check_request(ctx)  # an immediate send: 429 once the day's budget is spent
    message_id = messages.new_id(ctx.idempotency_scope)
    wait = 0.0
    twilio = None
    if send_at is None:
        velocity.admit(ctx, to, messages.key(message_id))  # scheduled ones count when sent
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
    if send_at is None:
        record["counted"] = True  # velocity: the worker's retries never count it again
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
    existing = immediate.write(table, record, ctx)
    if existing is not None:
        return immediate.resume(table, existing)
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
    return immediate.send_now(table, record, twilio)


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
        record = messages.move(ctx.table, message_id, "canceled", sources=messages.CANCELABLE)
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
    field = "say" if say is not None else "twiml"
    check_destination(ctx, to, url=url, twiml=document, twiml_field=field)
    budget.check_request(ctx)
    velocity.admit(ctx, to, calls.key(messages.new_id(ctx.idempotency_scope)))
    return calls.place(ctx, to=to, sender=sender, url=url, twiml=document)
