"""Answers to the number's voice and fallback webhooks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chalicelib.telephony import identities, twiml

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

DEFAULT_GREETING = "Hello World"
APOLOGY = "We are sorry, but we cannot take your call right now. Please try again in a few minutes."
RING_CLIENTS = "voice/ring_clients"
RING_SECONDS = "voice/ring_seconds"
NO_ANSWER_URL = "voice/no_answer_url"
DEFAULT_RING_SECONDS = 20
UNANSWERED_ROUTE = "/voice/unanswered"


def greeting(request: VerifiedRequest, parameters: Parameters) -> str:
    """Ring the browser users in voice/ring_clients, if any; else say the configured greeting
    (parameter voice/greeting), "Hello World" by default."""
    clients = identities.parse_list(parameters.optional(RING_CLIENTS))
    if clients:
        return _ring(request, parameters, clients)
    return twiml.say(parameters.optional("voice/greeting") or DEFAULT_GREETING)


def _ring(request: VerifiedRequest, parameters: Parameters, clients: list[str]) -> str:
    from twilio.twiml.voice_response import Dial, VoiceResponse

    raw = (parameters.optional(RING_SECONDS) or "").strip()
    seconds = min(int(raw), 600) if raw.isdigit() and int(raw) > 0 else DEFAULT_RING_SECONDS
    response = VoiceResponse()
    # The caller's own number shows in the browser; the action takes over when nobody answers.
    dial = Dial(action=request.url_for(UNANSWERED_ROUTE), timeout=seconds)
    for client in clients:
        dial.client(client)
    response.append(dial)
    return str(response)


def unanswered(request: VerifiedRequest, parameters: Parameters) -> str:
    """POST /voice/unanswered, the ringing <Dial>'s action: hang up after a call that was
    answered; else go on to voice/no_answer_url (a voicemail twimlet, say) or the greeting."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    if request.twilio_param("DialCallStatus") == "completed":
        response.hangup()
        return str(response)
    target = (parameters.optional(NO_ANSWER_URL) or "").strip()
    if target.startswith("/"):
        target = request.url_for(target)
    if target.startswith("https://") or target.startswith("http://"):
        response.redirect(target)
        return str(response)
    if target:
        logger.error(
            "no-answer URL unusable; the greeting plays", extra={"parameter": NO_ANSWER_URL}
        )
    return twiml.say(parameters.optional("voice/greeting") or DEFAULT_GREETING)


def apology(request: VerifiedRequest, parameters: Parameters) -> str:
    """A fixed apology for the fallback URL: it must not depend on anything that may be down."""
    return twiml.say(APOLOGY)
