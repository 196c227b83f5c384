"""The two twimlets without stages: message (say or play) and echo (TwiML from the URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.twimlets import phpargs
from chalicelib.twimlets.common import Inputs, add_message, read

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest


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


def echo_webhook(verified: VerifiedRequest, parameters: Parameters) -> str:
    """GET/POST /twimlets/echo."""
    return echo(read(verified))
