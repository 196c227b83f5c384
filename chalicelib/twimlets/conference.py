"""The conference twimlet: pass code, moderators, SMS alerts to moderators, hold music."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

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
GENRES = frozenset({"classical", "ambient", "electronica", "guitars", "rock", "soft-rock"})


def _utf8(value: str) -> bytes:
    # PHP counts and hashes bytes; surrogatepass so no input can make encoding fail.
    return value.encode("utf-8", "surrogatepass")


def _loosely_listed(number: str, listed: list[str]) -> bool:
    # PHP in_array's loose ==: numeric strings compare as numbers ("0123" == "123").
    for entry in listed:
        if number.isdigit() and entry.isdigit():
            if int(number) == int(entry):
                return True
        elif number == entry:
            return True
    return False


def e164(national: str) -> str | None:
    """A moderator's normalised digits as an E.164 number: 10 digits are NANP; None if unusable."""
    if len(national) == 10:
        return "+1" + national
    if 11 <= len(national) <= 15 and not national.startswith("0"):
        return "+" + national
    return None


def conference(inputs: Inputs, policy: Policy | None = None) -> tuple[str, list[Job]]:
    """The conference TwiML, and the SMS alerts to queue for the moderators.

    A moderator whose number the destination policy refuses gets no SMS (logged); the others do.
    """
    response = VoiceResponse()
    password = inputs.conf("Password") or ""
    # This project compares the pass code as a string (the original's == let 01234 pass 1234),
    # in constant time as any secret.
    entered = inputs.field("Digits")
    if password and not hmac.compare_digest(_utf8(entered), _utf8(password)):
        gather = response.gather(num_digits=str(max(3, len(_utf8(password)))))
        gather.say(PROMPT)
        response.redirect("")
        return str(response), []

    raw_moderators = inputs.config.get("Moderators")
    moderated = isinstance(raw_moderators, dict)
    moderators = [digits(m) for m in phpargs.as_list(raw_moderators)] if moderated else []
    is_moderator = moderated and (
        _loosely_listed(digits(inputs.first_field("From", "Caller")), moderators)
        or _loosely_listed(digits(inputs.first_field("To", "Called")), moderators)
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
        for moderator in moderators:
            to = e164(moderator)
            if to is None:
                logger.warning("conference moderator has no usable number; no SMS sent")
                continue
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
        name = hashlib.md5(_utf8(message + "".join(moderators)), usedforsecurity=False).hexdigest()

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
