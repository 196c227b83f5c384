"""Outbound messages and calls for the JSON API: validate, pick defaults, hand to Twilio."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from chalicelib import twiml, validation
from chalicelib.twilio_rest import Credentials, get_twilio
from chalicelib.validation import ValidationError

if TYPE_CHECKING:
    from chalicelib.api import ApiContext
    from chalicelib.twilio_rest import TwilioRest

logger = logging.getLogger(__name__)

MAX_BODY = 1600  # Twilio's limit for a concatenated message
MAX_MEDIA = 10  # Twilio's limit of MediaUrl per message
MAX_TWIML = 4000  # Twilio's limit for the Twiml parameter
MESSAGE_FIELDS = ("to", "body", "from", "media_urls")
CALL_FIELDS = ("to", "from", "url", "twiml", "say")


def send_message(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """POST /messages: send one SMS/MMS now; 201 with Twilio's SID.

    Raises:
        ValidationError: bad input, naming the field.
        TwilioError: Twilio refused or failed.
    """
    validation.only_keys(payload, MESSAGE_FIELDS)
    to = validation.phone_number(payload, "to", required=True)
    body = validation.string(payload, "body") or ""
    media_urls = validation.url_list(payload, "media_urls", most=MAX_MEDIA)
    if len(body) > MAX_BODY:
        raise ValidationError(f"body must be at most {MAX_BODY} characters", "body")
    if not body.strip() and not media_urls:
        raise ValidationError("body must not be empty unless media_urls are given", "body")
    sender = validation.sender(payload) or _default_sender(ctx, for_calls=False)
    message_id = os.urandom(16).hex()
    result = _twilio(ctx).send_message(
        to=str(to), body=body or None, sender=sender, media_urls=media_urls
    )
    logger.info(
        "message sent", extra={"id": message_id, "message_sid": result["sid"], "to": result["to"]}
    )
    return 201, {"id": message_id, **result}


def place_call(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """POST /calls: place a call that runs url, twiml or say (default: this app's /voice).

    Raises:
        ValidationError: bad input, naming the field.
        TwilioError: Twilio refused or failed.
    """
    validation.only_keys(payload, CALL_FIELDS)
    to = validation.phone_number(payload, "to", required=True)
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
    sender = validation.phone_number(payload, "from") or _default_sender(ctx, for_calls=True)
    result = _twilio(ctx).place_call(to=str(to), sender=sender, url=url, twiml=document)
    logger.info("call placed", extra={"call_sid": result["sid"], "to": result["to"]})
    return 201, result


def _default_sender(ctx: ApiContext, *, for_calls: bool) -> str:
    default = ctx.parameters.optional("twilio/default_from")
    if default and for_calls and not validation.E164.fullmatch(default):
        raise ValidationError(
            "from is required: the default sender is a Messaging Service, which cannot call",
            "from",
        )
    if not default:
        raise ValidationError("from is required: parameter twilio/default_from is not set", "from")
    return default


def _twilio(ctx: ApiContext) -> TwilioRest:
    return get_twilio(
        Credentials.from_parameters(ctx.parameters), base_url=ctx.settings.twilio_api_base_url
    )
