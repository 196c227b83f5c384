"""The conference twimlet: pass code, moderators, SMS alerts to moderators, hold music."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.guards import callers
from chalicelib.guards.destinations import Policy
from chalicelib.twimlets import phpargs
from chalicelib.twimlets.common import (
    Inputs,
    Job,
    add_message,
    attribute,
    defer_once,
    digits,
    read,
    text,
)
from chalicelib.webhooks import replay

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

PROMPT = "Please enter your conference pass code"
GREETING = "You are now entering the conference line."
SMS_TEXT = "{caller} has entered your conference.  Call the number this text came from to join."
GOODBYE = "Sorry, that pass code is not correct. Good bye."
# The marker counting pass-code prompts in the URLs the conference calls itself back on.
ATTEMPTS = "PassCodeAttempts"
PASS_CODE_ATTEMPTS = 3
OWN_PARAMETERS = frozenset(
    {"Name", "Password", "Moderators", "EnableSmsNotifications", "Message", "Music"}
)
# A moderated room's moderators, and the SMS alerts one caller joining can send.
MAX_MODERATORS = 10
MAX_ALERTS = 10
GENRES = frozenset({"classical", "ambient", "electronica", "guitars", "rock", "soft-rock"})


def _utf8(value: str) -> bytes:
    # PHP counts and hashes bytes; surrogatepass so no input can make encoding fail.
    return value.encode("utf-8", "surrogatepass")


def _tries(value: str | None) -> int:
    """The pass-code prompts already played, from our marker; a huge value is all of them."""
    value = value or ""
    if not (value.isascii() and value.isdigit()):
        return 0
    return int(value) if len(value) <= 3 else PASS_CODE_ATTEMPTS


def _ask_pass_code(inputs: Inputs, password: str) -> str:
    """Prompt for the pass code, at most PASS_CODE_ATTEMPTS times per call, then hang up.

    Deliberate departure from the original, which prompted for ever: a twimlet keeps no state,
    so the prompts played so far travel in the URL it calls next (ours, signed by Twilio; a
    caller can only send digits). Silence counts as a wrong code.
    """
    response = VoiceResponse()
    tried = _tries(inputs.conf(ATTEMPTS))
    if tried >= PASS_CODE_ATTEMPTS:
        logger.warning(
            "conference refused: wrong pass code; call ended",
            extra={"attempts": tried, "caller": callers.mask(inputs.first_field("From", "Caller"))},
        )
        response.say(GOODBYE)
        response.hangup()
        return str(response)
    # The conference's own parameters only: on a GET, Twilio's fields (Digits, CallSid, From…)
    # are in the query too, and must not ride along into the next request.
    query = [(name, value) for name, value in inputs.query if name.split("[")[0] in OWN_PARAMETERS]
    again = inputs.url("conference", [*query, (ATTEMPTS, str(tried + 1))])
    gather = response.gather(action=again, num_digits=str(max(3, len(_utf8(password)))))
    gather.say(PROMPT)
    response.redirect(again)
    return str(response)


def moderator_numbers(written: list[str]) -> list[str]:
    """The moderators' E.164 numbers, the first MAX_MODERATORS of them.

    Deliberate departure from the original's loose digit compare: see guards.callers.e164. An
    entry that cannot be read as a number (blank, no country code) is nobody.
    """
    found = callers.numbers(written)
    unusable = sum(1 for entry in written if entry.strip() and callers.e164(entry) is None)
    if unusable:
        logger.warning("conference moderator entries unusable; ignored", extra={"count": unusable})
    if len(found) > MAX_MODERATORS:
        logger.warning(
            "conference moderators over the cap; the first ones kept",
            extra={"count": len(found), "cap": MAX_MODERATORS},
        )
    return found[:MAX_MODERATORS]


def conference(inputs: Inputs, policy: Policy | None = None) -> tuple[str, list[Job]]:
    """The conference TwiML, and the SMS alerts to queue for the moderators.

    A moderator whose number the destination policy refuses gets no SMS (logged); the others do.
    """
    password = inputs.conf("Password") or ""
    # This project compares the pass code as a string (the original's == let 01234 pass 1234),
    # in constant time as any secret.
    entered = inputs.field("Digits")
    if password and not hmac.compare_digest(_utf8(entered), _utf8(password)):
        return _ask_pass_code(inputs, password), []

    response = VoiceResponse()
    raw_moderators = inputs.config.get("Moderators")
    moderated = isinstance(raw_moderators, dict)
    written = phpargs.as_list(raw_moderators) if moderated else []
    moderators = moderator_numbers(written)
    # The called number counts too, as in the original: a call placed to a moderator.
    is_moderator = moderated and (
        callers.listed(inputs.first_field("From", "Caller"), moderators)
        or callers.listed(inputs.first_field("To", "Called"), moderators)
    )

    jobs: list[Job] = []
    call = inputs.field("CallSid")
    notify = (
        moderated
        and not is_moderator
        and phpargs.truthy(inputs.config.get("EnableSmsNotifications"))
    )
    if notify and not replay.is_sid(call, "CA"):
        # Each join texts once, keyed by its CallSid: without one (a re-cut request) none.
        logger.warning("conference join without a well-formed CallSid; no SMS sent")
        notify = False
    if notify:
        # Sent through the REST API by the queue worker: voice TwiML cannot hold <Message>.
        body = SMS_TEXT.format(caller=inputs.field("Caller"))
        for to in moderators[:MAX_ALERTS]:
            if not (policy or Policy.default()).admit(to, "twimlet conference"):
                continue
            # Once per call joining: a replayed or retried join texts nobody again.
            key = f"conference-join:{call}:{hashlib.sha256(to.encode()).hexdigest()[:16]}"
            payload = {"to": to, "body": body, "event": key}
            jobs.append(Job("sms_notification", payload, "conference", key))

    message = inputs.conf("Message") or ""
    add_message(response, message, trimmed=False, default=GREETING)

    name = inputs.conf("Name") or ""
    if not name:
        # Not unique, but stable for the same Message and moderators, as the original.
        # Hashed from the original's digit form, so a room keeps its name across this change.
        joined = "".join(digits(m) for m in written)
        name = hashlib.md5(_utf8(message + joined), usedforsecurity=False).hexdigest()

    options: dict[str, str] = {}
    music = inputs.conf("Music") or ""
    if music in GENRES:
        options["wait_url"] = inputs.url("holdmusic", [("Bucket", f"com.twilio.music.{music}")])
        options["wait_method"] = "GET"
    elif music[:4].lower() == "http":
        options["wait_url"] = attribute(music)
        options["wait_method"] = "GET"
    if moderated:
        options["start_conference_on_enter"] = "true" if is_moderator else "false"
    dial = response.dial()
    dial.conference(text(name), **options)
    return str(response), jobs


def conference_webhook(verified: VerifiedRequest, parameters: Parameters) -> str:
    """GET/POST /twimlets/conference."""
    twiml, jobs = conference(read(verified), Policy.from_parameters(parameters))
    defer_once(verified, jobs)
    return twiml
