"""The dialling twimlets: forward, callme, simulring, findme, and whisper for the callee's leg."""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.guards import callers
from chalicelib.guards.destinations import Policy, check_written
from chalicelib.twimlets import phpargs
from chalicelib.twimlets.common import (
    Inputs,
    Redirect,
    add_message,
    attribute,
    dial_answered,
    dial_returned,
    read,
    render,
    text,
    timeout,
    twimlet_url,
)

if TYPE_CHECKING:
    from chalice.app import Response

    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

REJECTED = "Sorry, you are calling from a restricted number. Good bye."
# forward and callme, when the destination policy refuses PhoneNumber (see docs/guards.md).
UNREACHABLE = "Sorry, this call cannot be connected."
# Twilio dials at most ten <Number>s at once; findme keeps the first ten (the original kept the
# 11th onward through an array_splice bug).
FINDME_LIMIT = 10
# PCRE's \s without /u: ASCII whitespace only.
_NOT_SPACE = re.compile("([^ \t\n\x0b\f\r])")


def hangup() -> str:
    """<Response><Hangup/></Response>."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def after_dial(inputs: Inputs) -> str | Redirect:
    """forward, callme and simulring back from <Dial>: hang up when answered, else FailUrl."""
    fail_url = inputs.conf("FailUrl") or ""
    if dial_answered(inputs) or not fail_url:
        return hangup()
    return Redirect(fail_url)


def is_allowed(allowed_callers: phpargs.PhpValue | None, caller: str) -> bool:
    """forward's allow-list: off unless an entry is truthy; then the caller must be listed.

    Deliberate departure from the original (which compared digits loosely): both sides are
    read as E.164 (guards.callers.e164) and compared exactly, so 510-555-1212 admits
    +15105551212 but "+51 05551212" (another country) does not. Entries that cannot be read as
    a number match nobody, and neither does a caller without a number. Only the caller counts,
    not the called number (which the original also matched). Caller ID can be spoofed.
    """
    entries = phpargs.as_list(allowed_callers)
    if not any(phpargs.truthy(entry) for entry in entries):
        return True
    allowed = callers.numbers(entries)
    if any(entry.strip() and callers.e164(entry) is None for entry in entries):
        # Most likely an international number written without its "+": say so, once a call.
        logger.warning("twimlet forward: AllowedCallers entries that are no number ignored")
    return callers.listed(caller, allowed)


def _reachable(policy: Policy, written: str, twimlet: str) -> str | None:
    """A PhoneNumber as the E.164 number to dial, or None when the policy refuses it (logged)."""
    number, refusal = check_written(policy, text(written))
    if refusal is not None:
        refusal.log(f"twimlet {twimlet}")
    return number


def _reachable_all(policy: Policy, written: list[str], twimlet: str) -> list[str]:
    """The numbers the policy lets the twimlet dial, in order, as E.164; the others logged."""
    numbers = [_reachable(policy, number, twimlet) for number in written]
    return [number for number in numbers if number is not None]


def unreachable(fail_url: str | None) -> str:
    """A refused PhoneNumber: a short apology, then FailUrl when set, else hang up."""
    response = VoiceResponse()
    response.say(UNREACHABLE)
    if phpargs.truthy(fail_url):
        response.redirect(attribute(fail_url or ""))
    else:
        response.hangup()
    return str(response)


def forward(inputs: Inputs, policy: Policy | None = None) -> str | Redirect:
    """Dial PhoneNumber for allowed callers; on return, hang up or go to FailUrl."""
    if dial_returned(inputs):
        return after_dial(inputs)
    if not is_allowed(inputs.config.get("AllowedCallers"), inputs.first_field("From", "Caller")):
        logger.info(
            "twimlet forward refused: caller not on the allow-list",
            extra={"caller": callers.mask(inputs.first_field("From", "Caller"))},
        )
        response = VoiceResponse()
        response.say(REJECTED)
        return str(response)
    number = _reachable(policy or Policy.default(), inputs.conf("PhoneNumber") or "", "forward")
    if number is None:
        return unreachable(inputs.conf("FailUrl"))
    return _forward_dial(
        inputs.base_url,
        number,
        inputs.conf("FailUrl"),
        inputs.conf("Timeout"),
        inputs.conf("CallerId"),
    )


@functools.lru_cache(maxsize=64)
def _forward_dial(
    base_url: str,
    number: str | None,
    fail_url: str | None,
    seconds: str | None,
    caller_id: str | None,
) -> str:
    # A forward URL is called again and again with the same configuration: its <Dial> is
    # built (URL encoding, ElementTree: a third of the webhook's CPU) once per configuration
    # and container. Only the allow-list check above depends on the caller.
    action = [("Dial", "true")]
    if phpargs.truthy(fail_url):
        action.append(("FailUrl", fail_url or ""))
    response = VoiceResponse()
    response.dial(
        text(number or ""),
        action=twimlet_url(base_url, "forward", action),
        timeout=timeout(seconds, 20),
        # Emitted whenever set, even empty, as the original did.
        caller_id=attribute(caller_id) if caller_id is not None else None,
    )
    return str(response)


def callme(inputs: Inputs, policy: Policy | None = None) -> str | Redirect:
    """Dial PhoneNumber with a whisper to the callee; on return, hang up or go to FailUrl."""
    if dial_returned(inputs):
        return after_dial(inputs)
    number = _reachable(policy or Policy.default(), inputs.conf("PhoneNumber") or "", "callme")
    if number is None:
        return unreachable(inputs.conf("FailUrl"))
    action = [("Dial", "true")]
    # Added whenever set, even empty, unlike forward.
    if inputs.is_set("FailUrl"):
        action.append(("FailUrl", inputs.conf("FailUrl") or ""))
    response = VoiceResponse()
    dial = response.dial(
        action=inputs.url("callme", action), timeout=timeout(inputs.conf("Timeout"), 20)
    )
    dial.number(
        number,
        url=inputs.url("whisper", [("Message", inputs.conf("Message") or "")]),
    )
    return str(response)


def simulring(inputs: Inputs, policy: Policy | None = None) -> str | Redirect:
    """Ring every number at once, each with a whisper; on return, hang up or go to FailUrl."""
    if dial_returned(inputs):
        return after_dial(inputs)
    # The order given: the original sorted the numbers with PHP sort().
    given = phpargs.filtered(phpargs.as_list(inputs.config.get("PhoneNumbers")))
    numbers = _reachable_all(policy or Policy.default(), given, "simulring")
    if given and not numbers:
        # Every number refused: as findme with none left, FailUrl or hang up.
        fail_url = inputs.conf("FailUrl") or ""
        return Redirect(fail_url) if fail_url else hangup()
    response = VoiceResponse()
    dial = response.dial(
        action=inputs.url(
            "simulring", [("Dial", "true"), ("FailUrl", inputs.conf("FailUrl") or "")]
        ),
        timeout=timeout(inputs.conf("Timeout"), 20),
    )
    whisper_url = inputs.url("whisper", [("Message", inputs.conf("Message") or "")])
    for number in numbers:
        dial.number(number, url=whisper_url)
    return str(response)


def findme(inputs: Inputs, policy: Policy | None = None) -> str | Redirect:
    """Try the numbers one after another until one answers and presses a key, else FailUrl."""
    given = phpargs.filtered(phpargs.as_list(inputs.config.get("PhoneNumbers")))[:FINDME_LIMIT]
    if inputs.is_set("Dial") and dial_answered(inputs):
        return hangup()
    # The refused numbers are left out: the rest are tried, and only they travel onwards.
    numbers = _reachable_all(policy or Policy.default(), given, "findme")
    fail_url = inputs.conf("FailUrl") or ""
    if not numbers:
        return Redirect(fail_url) if fail_url else hangup()
    message = inputs.conf("Message") or ""
    raw_timeout = inputs.conf("Timeout") or ""
    # The numbers still to try travel in the action URL only; every marker is kept, even empty.
    action = [
        ("Dial", "true"),
        ("FailUrl", fail_url),
        ("Timeout", raw_timeout),
        ("Message", message),
    ]
    action += [("PhoneNumbers[]", number) for number in numbers[1:]]
    response = VoiceResponse()
    dial = response.dial(action=inputs.url("findme", action), timeout=timeout(raw_timeout, 60))
    dial.number(
        numbers[0],
        url=inputs.url("whisper", [("Message", message), ("HumanCheck", "1")]),
    )
    return str(response)


def spell(number: str) -> str:
    """Each non-space character followed by ". ", so a number is read digit by digit."""
    return _NOT_SPACE.sub(r"\1. ", number)


def whisper(inputs: Inputs) -> str:
    """The callee's leg: announce the call and wait for a key; with HumanCheck, hang up on none."""
    response = VoiceResponse()
    if inputs.has_field("Digits"):
        if not inputs.field("Digits"):
            response.hangup()
        return str(response)
    caller = inputs.first_field("From", "Caller")
    default = f"You are receiving a call from {spell(caller)}.  Press any key to accept."
    gather = response.gather(num_digits="1")
    add_message(gather, inputs.conf("Message"), trimmed=True, default=text(default))
    if inputs.is_set("HumanCheck"):
        response.hangup()
    return str(response)


def forward_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/forward."""
    return render(forward(read(verified), Policy.from_parameters(parameters)))


def callme_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/callme."""
    return render(callme(read(verified), Policy.from_parameters(parameters)))


def simulring_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/simulring."""
    return render(simulring(read(verified), Policy.from_parameters(parameters)))


def findme_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/findme."""
    return render(findme(read(verified), Policy.from_parameters(parameters)))


def whisper_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/whisper."""
    return whisper(read(verified))
