"""Senders the account owns: an API `from`, or twilio/default_from, must be one of the account's
numbers, a verified caller ID (calls only), a Messaging Service SID (messages only) or an
alphanumeric sender ID the owner listed (messages only).

The account's numbers and caller IDs come from Twilio (IncomingPhoneNumbers, OutgoingCallerIds),
kept for TTL seconds in the container and read again once on a miss (a number bought a minute ago
works at once), at most once per REFRESH_EVERY seconds, so a stranger's unknown `from` cannot
make every request list them. When Twilio cannot say, the send fails (503): nothing is guessed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.api.validation import (
    ALPHANUMERIC_SENDER,
    E164,
    MESSAGING_SERVICE_SID,
    ValidationError,
)
from chalicelib.core.errors import ConfigurationError, UnavailableError
from chalicelib.core.logs import mask_numbers

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters

logger = logging.getLogger(__name__)

ALPHANUMERIC_PARAMETER = "outbound/alphanumeric_senders"
DEFAULT_FROM = "twilio/default_from"
TTL = 300.0
REFRESH_EVERY = 10.0
_clock = time.monotonic  # tests move it
NUMBER, SERVICE, ALPHANUMERIC = "number", "messaging_service", "alphanumeric"

Lister = Callable[[], tuple[frozenset[str], frozenset[str]]]


def kind(sender: str) -> str | None:
    """Which kind of sender the text is, or None if it is none Twilio accepts."""
    if E164.fullmatch(sender):
        return NUMBER
    if MESSAGING_SERVICE_SID.fullmatch(sender):
        return SERVICE
    if ALPHANUMERIC_SENDER.fullmatch(sender) and sender.strip() == sender:
        return ALPHANUMERIC
    return None


def listed_alphanumeric(parameters: Parameters) -> frozenset[str]:
    """The owner's alphanumeric sender IDs (comma-separated), compared case-insensitively."""
    raw = parameters.optional(ALPHANUMERIC_PARAMETER) or ""
    return frozenset(entry.strip().casefold() for entry in raw.split(",") if entry.strip())


class _Owned:
    """The account's numbers and caller IDs, as last read, per container."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: frozenset[str] = frozenset()
        self._caller_ids: frozenset[str] = frozenset()
        self._read_at = -float("inf")
        self._account: str | None = None

    def knows(self, account: str, number: str, *, calls: bool, lister: Lister) -> bool:
        """Whether number is the account's (a caller ID counts for calls); reads Twilio when the
        list is old, and once more on a miss unless it was read under REFRESH_EVERY ago.

        Raises:
            UnavailableError: Twilio could not list them, and nothing fresh is known.
        """
        now = _clock()
        with self._lock:
            if self._account != account or now - self._read_at > TTL:
                self._read(account, lister, now)
            if self._has(number, calls):
                return True
            if now - self._read_at < REFRESH_EVERY:
                return False
            self._read(account, lister, now)
            return self._has(number, calls)

    def _has(self, number: str, calls: bool) -> bool:
        return number in self._numbers or (calls and number in self._caller_ids)

    def _read(self, account: str, lister: Lister, now: float) -> None:
        from chalicelib.telephony.twilio_rest import TwilioError

        try:
            self._numbers, self._caller_ids = lister()
        except TwilioError as exc:
            if exc.credentials_refused:
                raise  # the API's answer to refused credentials (502), as for a send
            logger.error("could not list the account's numbers", extra={"status": exc.status})
            raise UnavailableError(
                "Twilio could not list this account's numbers to check the sender; try again"
            ) from None
        self._account, self._read_at = account, now

    def reset(self) -> None:
        with self._lock:
            self._read_at, self._account = -float("inf"), None


_owned = _Owned()


def reset() -> None:
    """Forget the numbers read (tests, and a new account's credentials)."""
    _owned.reset()


def check(
    sender: str,
    *,
    calls: bool,
    parameters: Parameters,
    account: str,
    lister: Lister,
    parameter: str | None = None,
) -> None:
    """Refuse a sender the account does not own: a 400 naming `from`, or, for parameter (the
    default sender), a 500 naming the parameter, since the owner set it, not the caller.

    Raises:
        ValidationError, ConfigurationError: the sender is not the account's to use here.
        UnavailableError: Twilio could not be asked.
    """
    found = kind(sender)
    refusal = None
    if found is None:
        refusal = "is not a phone number, a Messaging Service SID or an alphanumeric sender ID"
    elif found == SERVICE and calls:
        refusal = "is a Messaging Service, which cannot place calls"
    elif found == ALPHANUMERIC and calls:
        refusal = "is an alphanumeric sender ID, which cannot place calls"
    elif found == ALPHANUMERIC and sender.casefold() not in listed_alphanumeric(parameters):
        refusal = f"is an alphanumeric sender ID not listed in {ALPHANUMERIC_PARAMETER}"
    elif found == NUMBER and not _owned.knows(account, sender, calls=calls, lister=lister):
        what = "a number or verified caller ID" if calls else "a number"
        refusal = f"is not {what} of this Twilio account"
    if refusal is None:
        return
    shown = mask_numbers(sender)
    logger.warning("sender refused", extra={"sender": shown, "parameter": parameter})
    if parameter is not None:
        raise ConfigurationError(f"the parameter {parameter} ({shown}) {refusal}", parameter)
    raise ValidationError(f"from ({shown}) {refusal}", "from", reason="sender_not_allowed")
