"""Business hours, the worked example of docs/your-own-flow.md.

A call in opening hours hears a menu: 1 rings sales (a <Dial> with a timeout, through the
destination policy), 2 leaves a voicemail; out of hours it is told so and goes to voicemail. A
text out of hours gets an automatic reply. Everything comes from parameters, read without
botocore (a voice webhook's cold start stays light).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from chalicelib.core import clock
from chalicelib.guards.destinations import Policy
from chalicelib.twimlets.common import twimlet_url

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MENU = "Thanks for calling. For sales, press 1. To leave a message, press 2."
CLOSED = "Thanks for calling. We are closed right now."
NO_ANSWER = "Sorry, nobody could take your call."
NOT_UNDERSTOOD = "Sorry, I did not get that."
UNREACHABLE = "Sorry, this call cannot be connected."
CLOSED_REPLY = "Thanks for your message. We are closed now and will answer when we open."


@dataclass(frozen=True)
class Hours:
    """When the business answers: days of the week, an opening and closing time, a zone."""

    days: frozenset[int]
    opens: time
    closes: time
    zone: str

    @classmethod
    def from_parameters(cls, parameters: Parameters) -> Hours:
        """hours/open ("09:00-17:00"), hours/days ("mon-fri" or "mon,wed,sat"), hours/timezone
        (an IANA zone); an unreadable value falls back to its default."""
        opens, closes = time(9), time(17)
        span = (parameters.optional("hours/open") or "").replace(" ", "")
        try:
            first, last = span.split("-")
            opens, closes = time.fromisoformat(first), time.fromisoformat(last)
        except ValueError:
            pass
        days = _days(parameters.optional("hours/days") or "mon-fri") or frozenset(range(5))
        return cls(days, opens, closes, parameters.optional("hours/timezone") or "UTC")

    def open_at(self, instant: datetime) -> bool:
        """Whether instant (aware) falls in opening hours, in the business's own zone."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            local = instant.astimezone(ZoneInfo(self.zone))
        except (ZoneInfoNotFoundError, ValueError):
            local = instant.astimezone(UTC)
        return local.weekday() in self.days and self.opens <= local.time() < self.closes


def _days(text: str) -> frozenset[int]:
    found: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            continue
        start, end = DAYS.index(first), DAYS.index(last or first)
        found.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)])
    return frozenset(found)


def _now() -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


def _voicemail(request: VerifiedRequest, parameters: Parameters, response: VoiceResponse) -> str:
    email = parameters.optional("hours/voicemail_email")
    if email:
        response.redirect(twimlet_url(request.base_url, "voicemail", [("Email", email)]))
    else:
        response.hangup()
    return str(response)


def answer(request: VerifiedRequest, parameters: Parameters) -> str:
    """POST /hours: the menu in opening hours, else closed and on to voicemail."""
    response = VoiceResponse()
    if not Hours.from_parameters(parameters).open_at(_now()):
        response.say(CLOSED)
        return _voicemail(request, parameters, response)
    gather = response.gather(num_digits=1, action=request.url_for("/hours/menu"), timeout=5)
    gather.say(MENU)
    response.redirect(request.url_for("/hours"))  # no key pressed: the menu again
    return str(response)


def menu(request: VerifiedRequest, parameters: Parameters) -> str:
    """POST /hours/menu: 1 rings sales for 20 s, 2 goes to voicemail, anything else repeats."""
    response = VoiceResponse()
    digit = request.twilio_param("Digits")
    if digit == "1":
        sales = parameters.optional("hours/sales_number") or ""
        if not Policy.from_parameters(parameters).admit(sales, "flow hours"):
            response.say(UNREACHABLE)
            return _voicemail(request, parameters, response)
        response.dial(sales, timeout=20, caller_id=parameters.optional("twilio/default_from"))
        response.say(NO_ANSWER)  # reached when the dial ends unanswered
        return _voicemail(request, parameters, response)
    if digit == "2":
        return _voicemail(request, parameters, response)
    response.say(NOT_UNDERSTOOD)
    response.redirect(request.url_for("/hours"))
    return str(response)


def text(request: VerifiedRequest, parameters: Parameters) -> str:
    """POST /hours/sms: an automatic reply out of hours, nothing in hours."""
    response = MessagingResponse()
    if not Hours.from_parameters(parameters).open_at(_now()):
        response.message(parameters.optional("hours/closed_reply") or CLOSED_REPLY)
    return str(response)
