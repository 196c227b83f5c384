"""The two twimlets without stages: message (say or play) and echo (TwiML from the URL)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.core import responses
from chalicelib.guards import callers
from chalicelib.twimlets import phpargs
from chalicelib.twimlets.common import Inputs, add_message, read

if TYPE_CHECKING:
    from chalice.app import Response

    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

DISABLED = f"Not found: the echo twimlet is off (parameter {callers.ECHO_PARAMETER})"


def message(inputs: Inputs) -> str:
    """One <Play> or <Say> per Message value, in list order; blank values skipped."""
    response = VoiceResponse()
    for value in phpargs.as_list(inputs.config.get("Message")):
        add_message(response, value, trimmed=True)
    return str(response)


def echo(inputs: Inputs) -> str:
    """The Twiml parameter byte for byte: no declaration, no validation, no escaping.

    It is exactly as trustworthy as whoever can set the number's URL; the URL is signed, so
    only Twilio (for the account) can make this app serve it.
    """
    return inputs.conf("Twiml") or ""


def message_webhook(verified: VerifiedRequest, parameters: Parameters) -> str:
    """GET/POST /twimlets/message."""
    return message(read(verified))


def echo_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/echo: 404, as an unknown twimlet, unless twimlets/echo_enabled.

    Deliberate departure from the original, always on: any TwiML at all, <Dial> to any number
    included, is one signed URL away for whoever can point a call at this app (POST /calls, a
    FailUrl, a menu option), past every other guard.
    """
    if not callers.enabled(parameters.optional(callers.ECHO_PARAMETER)):
        logger.warning(
            "twimlet echo refused: disabled", extra={"parameter": callers.ECHO_PARAMETER}
        )
        return responses.plain(404, DISABLED)
    return echo(read(verified))
