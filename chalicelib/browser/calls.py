"""/client/voice: the TwiML App's Voice URL, where a browser user's outgoing call is answered.

Twilio requests it, signed like every webhook, when the Voice SDK connects with params
{To: ...}. The caller must be a browser user of this account ("client:NAME"; the signature
proves the account) through this deployment's TwiML App. A phone number is dialled from
twilio/default_from through the destination policy and the velocity limits; "client:NAME"
rings another browser user; anything else hears a short error. Nothing a browser sends decides
the caller ID.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import Dial, VoiceResponse

from chalicelib.core import clock
from chalicelib.guards.destinations import NOT_E164, Policy, check_written
from chalicelib.telephony import identities

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

NOT_ALLOWED = "This call is not allowed."
UNKNOWN = "Sorry, that is not a number or a user this phone can call."
LIMITED = "Too many calls to that number. Please try again later."
BUDGET = "Today's calling budget is spent. Please try again tomorrow."
NO_CALLER_ID = "This phone cannot call numbers yet."
TWIML_APP = "voice/twiml_app_sid"
DEFAULT_FROM = "twilio/default_from"
RING_SECONDS = 30


def _refuse(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def answer(request: VerifiedRequest, parameters: Parameters) -> str:
    """POST /client/voice: dial the number or the browser user in To, or say why not."""
    caller = identities.of_address(request.twilio_param("From") or request.twilio_param("Caller"))
    application = request.twilio_param("ApplicationSid")
    if caller is None or application != parameters.optional(TWIML_APP):
        # Signed by this account, but not a browser call through this deployment's TwiML App:
        # another app of the account, or a phone number pointed here by mistake.
        logger.warning("browser call refused: not a client of this TwiML App")
        return _refuse(NOT_ALLOWED)
    to = (request.twilio_param("To") or "").strip()
    callee = identities.of_address(to)
    if callee is not None:
        return _dial_client(callee, caller)
    return _dial_number(request, parameters, to, caller)


def _dial_client(callee: str, caller: str) -> str:
    response = VoiceResponse()
    dial = Dial(
        caller_id=f"{identities.PREFIX}{caller}", answer_on_bridge=True, timeout=RING_SECONDS
    )
    dial.client(callee)
    response.append(dial)
    logger.info("browser call to a browser user", extra={"identity": caller, "callee": callee})
    return str(response)


def _dial_number(request: VerifiedRequest, parameters: Parameters, to: str, caller: str) -> str:
    from chalicelib.aws import storage
    from chalicelib.core import settings
    from chalicelib.guards import budget, spend, velocity

    if not to or to.startswith(identities.PREFIX):
        return _refuse(UNKNOWN)
    number, refusal = check_written(Policy.from_parameters(parameters), to)
    if refusal is not None:
        refusal.log("browser call")
        return _refuse(NOT_ALLOWED if refusal.reason != NOT_E164 else UNKNOWN)
    assert number is not None
    caller_id = parameters.optional(DEFAULT_FROM)
    if not caller_id:
        logger.error("browser call refused: no caller ID", extra={"parameter": DEFAULT_FROM})
        return _refuse(NO_CALLER_ID)
    table = storage.get_table(settings.load().require_table())
    now = clock.now()
    # The budget holds browser calls too (their own price is Twilio's to bill: not in /spend).
    if budget.reached(table, parameters, spend.day_of(now)):
        logger.warning("browser call refused: daily budget spent", extra={"identity": caller})
        return _refuse(BUDGET)
    # Counted once per call: Twilio's retry of this request carries the same CallSid.
    token = f"client-{request.twilio_param('CallSid') or ''}"
    refused = velocity.take(table, velocity.send_limits(parameters, number, now), token)
    if refused is not None:
        logger.warning(
            "browser call refused: velocity limit",
            extra={"to": number, "limits": refused.describe(), "identity": caller},
        )
        return _refuse(LIMITED)
    response = VoiceResponse()
    response.dial(number, caller_id=caller_id, answer_on_bridge=True, timeout=RING_SECONDS)
    logger.info("browser call to a number", extra={"to": number, "identity": caller})
    return str(response)
