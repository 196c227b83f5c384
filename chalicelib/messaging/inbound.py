"""Incoming messages: store each once, honour opt-out keywords, auto-reply and forward."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.api import validation
from chalicelib.api.validation import ValidationError
from chalicelib.aws.storage import BY_INBOUND, ConditionFailedError
from chalicelib.core import clock, settings
from chalicelib.core.errors import StorageError
from chalicelib.guards import destinations, velocity
from chalicelib.messaging import deps, messages, optouts, timing
from chalicelib.telephony import twiml
from chalicelib.webhooks import replay

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

DEFAULT_HELP = "Reply STOP to unsubscribe, START to resubscribe. Msg & data rates may apply."
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def key(message_sid: str) -> str:
    """The table key of an inbound message."""
    return f"in#{message_sid}"


def _media(request: VerifiedRequest) -> list[str]:
    count = request.twilio_param("NumMedia") or "0"
    total = int(count) if count.isdigit() else 0
    urls = [request.twilio_param(f"MediaUrl{i}") for i in range(min(total, 10))]
    return [url for url in urls if url]


def receive(request: VerifiedRequest, parameters: Parameters) -> str:
    """/sms: store the message once per MessageSid, then answer keywords or auto-reply.

    A request without a well-formed MessageSid, or one delivered before (its signature seen,
    re-cut or not), is answered with empty TwiML and changes nothing.

    Raises:
        StorageError: the message could not be stored (the webhook then fails, visibly).
    """
    sid = replay.sid(request, ("MessageSid", "SmsSid"), ("SM", "MM"))
    if sid is None:
        logger.warning("inbound message without a well-formed MessageSid ignored")
        return twiml.message_reply(None)
    config = settings.load()
    table = deps.table(config)
    word = optouts.keyword(request.twilio_param("Body"))
    sender = request.twilio_param("From") or ""
    if word in ("stop", "start") and sender:
        return _keyword(request, parameters, config, table, sid, word, sender)
    with replay.once(table, request) as first:
        if not first:
            return twiml.message_reply(None)
        return _receive(request, parameters, config, table, sid)


def _receive(
    request: VerifiedRequest,
    parameters: Parameters,
    config: settings.Settings,
    table: Any,
    sid: str,
) -> str:
    sender = request.twilio_param("From") or ""
    body = request.twilio_param("Body") or ""
    media = _media(request)
    _store(table, config, request, sid)
    word = optouts.keyword(body)
    if word in ("stop", "start"):  # without a From: nobody's opt-out to change
        return twiml.message_reply(parameters.optional(f"sms/{word}_reply"))
    if word == "help":
        reply = parameters.optional("sms/help_text") or DEFAULT_HELP
    else:
        reply = parameters.optional("sms/auto_reply")
    forwards = word != "help" and bool(parameters.optional("sms/forward_to"))
    # The texter's daily cap (a StorageError fails the webhook: Twilio's retry counts again).
    if (reply or forwards) and not velocity.reply_allowed(table, parameters, sender, sid):
        return twiml.message_reply(None)
    if forwards:
        _forward(table, config, parameters, request, sid, sender, body, media)
    return twiml.message_reply(reply)


def _store(table: Any, config: settings.Settings, request: VerifiedRequest, sid: str) -> None:
    """Keep an inbound message once per MessageSid.

    Raises:
        StorageError: it could not be stored.
    """
    now = clock.now()
    try:
        table.put(
            {
                "pk": key(sid),
                "sid": sid,
                "kind": "inbound",
                "inbound": "inbound",
                "received_at": now,
                "from": request.twilio_param("From") or "",
                "to": request.twilio_param("To") or "",
                "body": request.twilio_param("Body") or "",
                "media_urls": _media(request),
                "expires_at": messages.expires_at(now, config.retention_days),
            },
            condition="attribute_not_exists(pk)",
        )
    except ConditionFailedError:
        logger.info("repeated delivery of an inbound message", extra={"message_sid": sid})


def _keyword(
    request: VerifiedRequest,
    parameters: Parameters,
    config: settings.Settings,
    table: Any,
    sid: str,
    word: str,
    sender: str,
) -> str:
    """STOP or START: stored, then applied with its markers in one transaction; a repeat (the
    same MessageSid, or the same signed request) is answered with empty TwiML."""
    _store(table, config, request, sid)
    if not optouts.apply_keyword(
        table, sid, word, sender, replay_key=replay.marker_key(request), window=replay.WINDOW
    ):
        logger.info("repeated keyword message ignored", extra={"message_sid": sid})
        return twiml.message_reply(None)
    logger.info("opt-out recorded" if word == "stop" else "opt-out removed", extra={"from": sender})
    reply = parameters.optional(f"sms/{word}_reply")
    try:
        if reply and not velocity.reply_allowed(table, parameters, sender, sid):
            reply = None  # the opt-out holds; only its confirmation is not sent
    except StorageError:
        logger.error("could not count a keyword reply; not sent", extra={"message_sid": sid})
        reply = None
    return twiml.message_reply(reply)


def _forward(
    table: Any,
    config: settings.Settings,
    parameters: Parameters,
    request: VerifiedRequest,
    sid: str,
    sender: str,
    body: str,
    media: list[str],
) -> None:
    targets = [t.strip() for t in (parameters.optional("sms/forward_to") or "").split(",")]
    targets = [t for t in targets if t]
    from_number = parameters.optional("twilio/default_from")
    if not targets or not from_number:
        return
    text = f"From {sender}: {body}"[: messages.MAX_BODY]
    policy = destinations.Policy.from_parameters(parameters)
    for i, target in enumerate(dict.fromkeys(targets)):
        if not validation.E164.fullmatch(target):
            logger.warning("sms/forward_to holds a number that is not E.164; skipped")
            continue
        if not policy.admit(target, "sms forwarding"):
            continue
        # One id per MessageSid and target: Twilio's retries of this webhook forward once.
        messages.queue_message(
            table,
            f"fwd-{sid}-{i}",
            to=target,
            sender=from_number,
            body=text,
            media_urls=media,
            status_callback=request.base_url + messages.STATUS_CALLBACK,
            retention_days=config.retention_days,
        )


def list_inbound(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /inbound?since=&limit=&next=: received messages, newest first, paginated.

    Raises:
        ValidationError: a bad since, limit or next.
    """
    since = _single(ctx, "since")
    lower = None
    if since is not None:
        lower = (
            timing.parse_send_at(since, None, "since", zones=False).timestamp() if since else None
        )
    limit_text = _single(ctx, "limit")
    limit = PAGE_SIZE
    if limit_text is not None:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
            raise ValidationError(f"limit must be 1 to {MAX_PAGE_SIZE}", "limit")
        limit = int(limit_text)
    start = validation.page_start(_single(ctx, "next"), {"pk", "inbound", "received_at"})
    items, last = ctx.table.query(
        BY_INBOUND,
        "inbound",
        "inbound",
        sort_key="received_at",
        lower=lower,
        descending=True,
        limit=limit,
        start=start,
    )
    return 200, {
        "messages": [
            {
                "sid": item["sid"],
                "from": item.get("from"),
                "to": item.get("to"),
                "body": item.get("body"),
                "media_urls": item.get("media_urls", []),
                "received_at": clock.iso(item["received_at"]),
            }
            for item in items
        ],
        "next": validation.page_token(last),
    }


def _single(ctx: ApiContext, name: str) -> str | None:
    values = ctx.query.get(name)
    return values[-1] if values else None
