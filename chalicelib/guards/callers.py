"""What a caller or a URL can make the twimlets do: caller-ID lists, echo, buckets, recipients.

Pure rules on strings, free of botocore: the twimlets read their parameters without the SDK and
call these. See docs/guards.md, "What a caller, a URL or an API caller can make the app do".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import NamedTuple

from chalicelib.core.logs import mask_numbers

logger = logging.getLogger(__name__)

ECHO_PARAMETER = "twimlets/echo_enabled"
BUCKETS_PARAMETER = "twimlets/holdmusic_buckets"
RECIPIENTS_PARAMETER = "twimlets/voicemail_recipients"

# Formatting people write in numbers; any other character makes the entry unusable.
_FORMATTING = re.compile(r"[ \t().\-/]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# A NANP area code and exchange never start with 0 or 1.
_NANP = re.compile(r"[2-9][0-9]{2}[2-9][0-9]{6}")
_TRUE = frozenset({"1", "true", "yes", "on"})
_SEPARATORS = re.compile(r"[\s,;]+")
# Twilio's public hold-music buckets: the conference twimlet's six genres.
TWILIO_BUCKETS = tuple(
    f"com.twilio.music.{genre}"
    for genre in ("classical", "ambient", "electronica", "guitars", "rock", "soft-rock")
)
# Written in twimlets/holdmusic_buckets for Twilio's six buckets beside the owner's own.
TWILIO_TOKEN = "twilio"
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def e164(written: str) -> str | None:
    """A written phone number as E.164, or None when it cannot be read without guessing.

    "+" then 7 to 15 digits is taken as is; 10 digits are a NANP number (+1); 11 digits
    starting with 1 are one too. Spaces, dots, dashes, slashes and brackets are ignored; any
    other character, or any other length, gives None. A value starting with a space and no "+"
    is read as having one: a raw "+" in a hand-written URL arrives as a space.
    """
    number = _FORMATTING.sub("", written)
    if written.startswith(" ") and not number.startswith("+"):
        number = "+" + number
    if number.startswith("+"):
        return number if _E164.fullmatch(number) else None
    if len(number) == 11 and number.startswith("1"):
        number = number[1:]
    return "+1" + number if _NANP.fullmatch(number) else None


def numbers(entries: Iterable[str], *, limit: int | None = None) -> list[str]:
    """The entries' E.164 numbers in order, unusable entries (no digits, a lost country code)
    dropped and duplicates kept once; at most limit of them."""
    found = list(dict.fromkeys(n for n in map(e164, entries) if n is not None))
    return found[:limit] if limit is not None else found


def listed(caller: str, allowed: Iterable[str]) -> bool:
    """The caller's number, as E.164, is exactly one of allowed (E.164 numbers).

    Caller ID is not authentication: it can be spoofed. A caller without a usable number
    (anonymous, a SIP or client identity) is listed nowhere.
    """
    number = e164(caller)
    return number is not None and number in set(allowed)


def mask(number: str) -> str:
    """A number fit for a log line: all but its last four digits hidden."""
    return mask_numbers(number.strip())


def mask_email(address: str) -> str:
    """An address fit for a log line: its domain only."""
    return "***@" + address.rsplit("@", 1)[-1] if "@" in address else "***"


def enabled(value: str | None) -> bool:
    """A switch parameter: on for 1, true, yes or on (any case); off when unset or else."""
    return (value or "").strip().lower() in _TRUE


def entries(value: str | None) -> list[str]:
    """A list parameter's entries: separated by commas, semicolons or whitespace."""
    return [entry for entry in _SEPARATORS.split(value or "") if entry]


class Bucket(NamedTuple):
    """A bucket holdmusic may list, and the AWS account expected to own it when known."""

    name: str
    owner: str | None = None


def allowed_buckets(value: str | None) -> dict[str, Bucket]:
    """twimlets/holdmusic_buckets: name or name:account-id entries; "twilio" for Twilio's six.

    Unset, Twilio's six public buckets (their owner's account is not published: no owner).
    """
    if value is None or not value.strip():
        return {name: Bucket(name) for name in TWILIO_BUCKETS}
    buckets: dict[str, Bucket] = {}
    for entry in entries(value):
        if entry.lower() == TWILIO_TOKEN:
            buckets.update({name: Bucket(name) for name in TWILIO_BUCKETS})
            continue
        name, _, owner = entry.partition(":")
        if not _BUCKET.fullmatch(name) or (owner and not _ACCOUNT_ID.fullmatch(owner)):
            logger.warning(
                "holdmusic bucket entry unusable; ignored", extra={"parameter": BUCKETS_PARAMETER}
            )
            continue
        buckets[name] = Bucket(name, owner or None)
    return buckets


class Recipients(NamedTuple):
    """The addresses and domains voicemail may e-mail, lower-cased."""

    addresses: frozenset[str]
    domains: frozenset[str]

    def allow(self, address: str) -> bool:
        """address is listed, or its domain is (exactly: not its subdomains)."""
        address = address.strip().lower()
        if address.count("@") != 1:
            return False
        return address in self.addresses or address.rsplit("@", 1)[1] in self.domains


def allowed_recipients(value: str | None, sender: str | None) -> Recipients:
    """twimlets/voicemail_recipients: addresses, "@domain" (or bare "domain") entries.

    Unset, the domain of the SES sender (voicemail/from_email): an office's voicemail goes to
    the office's own addresses. Neither set: nobody.
    """
    if value is None or not value.strip():
        domain = sender.strip().lower().rsplit("@", 1)[1] if sender and "@" in sender else ""
        return Recipients(frozenset(), frozenset({domain} if domain else ()))
    addresses: set[str] = set()
    domains: set[str] = set()
    for entry in entries(value.lower()):
        local, at, domain = entry.rpartition("@")
        if not at:
            domains.add(entry)
        elif not domain:
            logger.warning(
                "voicemail recipient entry unusable; ignored",
                extra={"parameter": RECIPIENTS_PARAMETER},
            )
        elif local:
            addresses.add(entry)
        else:
            domains.add(domain)
    return Recipients(frozenset(addresses), frozenset(domains))
