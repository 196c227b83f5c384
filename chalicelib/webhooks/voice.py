"""Answers to the number's voice and fallback webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.telephony import twiml

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

DEFAULT_GREETING = "Hello World"
APOLOGY = "We are sorry, but we cannot take your call right now. Please try again in a few minutes."


def greeting(request: VerifiedRequest, parameters: Parameters) -> str:
    """Say the configured greeting (parameter voice/greeting), "Hello World" by default."""
    return twiml.say(parameters.optional("voice/greeting") or DEFAULT_GREETING)


def apology(request: VerifiedRequest, parameters: Parameters) -> str:
    """A fixed apology for the fallback URL: it must not depend on anything that may be down."""
    return twiml.say(APOLOGY)
