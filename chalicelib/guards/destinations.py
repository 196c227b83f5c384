"""The one destination policy: which numbers the app may call or text, wherever it reaches one.

Pure code (no AWS SDK): the twimlets and the worker apply it as the API does. The policy is
read from two parameters, outbound/allowed_prefixes and outbound/blocked_prefixes; a number
passes when some allowed prefix matches it and no blocked prefix is more specific than the
longest allowed one that matches (so an owner allows a blocked range back by listing it, or a
longer prefix inside it, in outbound/allowed_prefixes). See docs/guards.md.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING, NamedTuple

from chalicelib.api.validation import ValidationError
from chalicelib.core.logs import mask_numbers

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters

logger = logging.getLogger(__name__)

ALLOWED_PARAMETER = "outbound/allowed_prefixes"
BLOCKED_PARAMETER = "outbound/blocked_prefixes"

# Why a number is refused (the API's "reason").
NOT_E164 = "not_e164"
NOT_ALLOWED = "not_allowed_prefix"
BLOCKED = "blocked_prefix"

DEFAULT_ALLOWED = ("+1",)  # NANP: the US and Canada, where a long code sends

# NANP premium rate. 900 is the pay-per-call area code (US and Canada). 976 is the old
# pay-per-call exchange inside every area code (NPA-976-XXXX), written with X for any digit;
# +1976 itself is the reserved area code the issue names, listed so that nothing reuses it.
PREMIUM_RATE = ("+1900", "+1976", "+1XXX976")

# NANP area codes of countries other than the US and Canada: dialled like a US number, billed
# (by Twilio and by US carriers) at that country's international rate, and the ranges behind
# "one-ring" callback scams. Source: NANPA's list of NANP countries and their area codes
# (https://nationalnanpa.com/area_codes/ , "Area Codes by Country"), cross-checked with the FCC
# consumer guide "'One Ring' Phone Scam" (https://www.fcc.gov/consumers/guides/one-ring-phone-
# scam), whose examples are 268 284 473 649 664 767 809 829 849 876.
# Not listed, on purpose: the US territories, which are US domestic under FCC rate integration
# and not behind those scams: Puerto Rico 787 939, US Virgin Islands 340, Guam 671, Northern
# Mariana Islands 670, American Samoa 684. An owner who wants them out adds them (see the docs).
NANP_ABROAD = {
    "+1242": "Bahamas",
    "+1246": "Barbados",
    "+1264": "Anguilla",
    "+1268": "Antigua and Barbuda",
    "+1284": "British Virgin Islands",
    "+1345": "Cayman Islands",
    "+1441": "Bermuda",
    "+1473": "Grenada",
    "+1649": "Turks and Caicos Islands",
    "+1658": "Jamaica",
    "+1664": "Montserrat",
    "+1721": "Sint Maarten",
    "+1758": "Saint Lucia",
    "+1767": "Dominica",
    "+1784": "Saint Vincent and the Grenadines",
    "+1809": "Dominican Republic",
    "+1829": "Dominican Republic",
    "+1849": "Dominican Republic",
    "+1868": "Trinidad and Tobago",
    "+1869": "Saint Kitts and Nevis",
    "+1876": "Jamaica",
}
DEFAULT_BLOCKED = PREMIUM_RATE + tuple(NANP_ABROAD)

E164 = re.compile(r"\+[1-9]\d{1,14}")
# A prefix as an owner writes it: "+" (optional) then digits, X for any digit.
_PREFIX = re.compile(r"\+?[0-9Xx]+")
# What people put between digits: spaces, dashes, dots, parentheses, slashes.
_SEPARATORS = re.compile(r"[\s\-./()]")


class Refusal(NamedTuple):
    """A destination the policy refuses: why (reason) and which rule (for the log and the 400)."""

    number: str
    reason: str
    rule: str

    @property
    def message(self) -> str:
        """A sentence for the API's 400, naming the parameter that would change the answer."""
        if self.reason == BLOCKED:
            return (
                f"the destination is blocked ({self.rule}); to allow it, add its prefix to "
                f"the parameter {ALLOWED_PARAMETER}"
            )
        if self.reason == NOT_ALLOWED:
            return (
                f"the destination matches none of {self.rule}; to allow it, add its prefix to "
                f"the parameter {ALLOWED_PARAMETER}"
            )
        if self.reason == NOT_E164:
            return f"the destination cannot be read as a phone number ({self.rule})"
        return self.rule

    def log(self, where: str) -> None:
        """One warning line: where, the masked number, the reason and the rule."""
        logger.warning(
            "destination refused",
            extra={
                "where": where,
                "number": mask_numbers(self.number),
                "reason": self.reason,
                "rule": self.rule,
            },
        )


class Policy:
    """Allowed and blocked prefixes (allowed None: every prefix, the owner's "*")."""

    def __init__(self, allowed: tuple[str, ...] | None, blocked: tuple[str, ...]) -> None:
        self.allowed = allowed
        self.blocked = blocked
        # Every dial checks ~25 blocked prefixes: one regex per list, longest first, so its
        # match is the longest matching prefix (a twimlet's warm run was a sixth in this loop).
        self._allowed = _longest_first(allowed or ())
        self._blocked = _longest_first(blocked)

    @classmethod
    def default(cls) -> Policy:
        """The policy when neither parameter is set."""
        return _policy(None, None)

    @classmethod
    def from_parameters(cls, parameters: Parameters) -> Policy:
        """The stage's policy, from outbound/allowed_prefixes and outbound/blocked_prefixes.

        Raises:
            ParameterStoreError: (parameters read on demand) the store cannot be read.
        """
        return _policy(
            parameters.optional(ALLOWED_PARAMETER), parameters.optional(BLOCKED_PARAMETER)
        )

    def check(self, number: str) -> Refusal | None:
        """None when the policy lets the app reach number, else the refusal naming its rule.

        number must be E.164 ("+" and digits); anything else is refused as not_e164.
        """
        if not E164.fullmatch(number):
            return Refusal(number, NOT_E164, "E.164 required")
        if self.allowed is None:
            allowed_length = 0
        else:
            allowed_length = _length(self._allowed, number)
            if allowed_length < 0:
                listed = ",".join(self.allowed) or "(none)"
                return Refusal(number, NOT_ALLOWED, f"{ALLOWED_PARAMETER} {listed}")
        # Equal length: the allowed entry wins, so listing a blocked prefix allows it back.
        if _length(self._blocked, number) <= allowed_length:
            return None
        matching = [p for p in self.blocked if _matches(p, number) and len(p) > allowed_length]
        if matching:
            return Refusal(number, BLOCKED, f"{BLOCKED_PARAMETER} {max(matching, key=len)}")
        return None

    def admit(self, number: str, where: str) -> bool:
        """check, logging a refusal with where it happened."""
        refusal = self.check(number)
        if refusal is not None:
            refusal.log(where)
        return refusal is None


def _matches(prefix: str, number: str) -> bool:
    if len(prefix) > len(number):
        return False
    return all(p == "X" or p == n for p, n in zip(prefix, number, strict=False))


def _longest_first(prefixes: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern matching any of prefixes (X: any digit), the longest tried first."""
    if not prefixes:
        return None
    ordered = sorted(prefixes, key=len, reverse=True)
    return re.compile("|".join(re.escape(p).replace("X", "[0-9]") for p in ordered))


def _length(pattern: re.Pattern[str] | None, number: str) -> int:
    """The length of the longest prefix matching number, -1 when none does."""
    found = pattern.match(number) if pattern is not None else None
    return found.end() if found else -1


def _entries(raw: str, name: str) -> tuple[str, ...]:
    """Comma-separated prefixes as "+" and digits/X; others are logged and left out."""
    entries = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        if not _PREFIX.fullmatch(entry):
            logger.warning(
                "destination prefix ignored: not + and digits", extra={"parameter": name}
            )
            continue
        entries.append("+" + entry.lstrip("+").upper())
    return tuple(entries)


@functools.lru_cache(maxsize=16)
def _policy(allowed_raw: str | None, blocked_raw: str | None) -> Policy:
    # Cached by the parameters' text: read per request, parsed once per value and container.
    allowed: tuple[str, ...] | None = DEFAULT_ALLOWED
    if allowed_raw is not None:
        if "*" in (part.strip() for part in allowed_raw.split(",")):
            allowed = None
        else:
            allowed = _entries(allowed_raw, ALLOWED_PARAMETER)
    blocked: tuple[str, ...] = DEFAULT_BLOCKED
    if blocked_raw is not None:
        parts = [part.strip().lower() for part in blocked_raw.split(",")]
        if parts == ["none"]:
            blocked = ()
        else:
            # "default" stands for the list above, so an owner can add to it.
            extra = ",".join(p for p in blocked_raw.split(",") if p.strip().lower() != "default")
            blocked = (DEFAULT_BLOCKED if "default" in parts else ()) + _entries(
                extra, BLOCKED_PARAMETER
            )
    return Policy(allowed, blocked)


def read_number(written: str) -> str | None:
    """A number as a twimlet's author wrote it, as E.164; None when it cannot be read for sure.

    Spaces, dashes, dots, slashes and parentheses are ignored. "+" and digits is E.164 as is;
    10 digits are a NANP number (+1 added), 11 digits starting with 1 get the "+". Anything
    else (other lengths without "+", letters, 00 or 011 exit codes, extensions) is not read:
    the policy cannot tell what Twilio would dial.
    """
    compact = _SEPARATORS.sub("", written)
    if E164.fullmatch(compact):
        return compact
    if compact.isascii() and compact.isdigit():
        if len(compact) == 10 and compact[0] in "23456789":
            return "+1" + compact
        if len(compact) == 11 and compact[0] == "1" and compact[1] in "23456789":
            return "+" + compact
    return None


def check_written(policy: Policy, written: str) -> tuple[str | None, Refusal | None]:
    """A written number read as E.164 and checked: (the number to dial, or the refusal)."""
    number = read_number(written)
    if number is None:
        return None, Refusal(written, NOT_E164, "E.164 or a 10-digit NANP number required")
    refusal = policy.check(number)
    return (None, refusal) if refusal is not None else (number, None)


def require(refusal: Refusal | None, field: str, where: str) -> None:
    """The API's answer to a refusal: logged, then a 400 naming field with the reason.

    Raises:
        ValidationError: when refusal is not None.
    """
    if refusal is not None:
        refusal.log(where)
        raise ValidationError(refusal.message, field, reason=refusal.reason)
