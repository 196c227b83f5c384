"""Opt-outs: the keywords that set and clear them, and the never-expiring records that hold them."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock

# Twilio's default keywords (REVOKE and OPTOUT since May 2025, after the FCC's rule).
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
_TRAILING_PUNCTUATION = re.compile(r"[\s.!?,;:]+$")


def keyword(body: str | None) -> str | None:
    """ "stop", "start" or "help" when the whole message is such a keyword, else None."""
    word = _TRAILING_PUNCTUATION.sub("", (body or "").strip()).upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def key(number: str) -> str:
    """The table key of a number's opt-out (across all of the account's numbers)."""
    return f"optout#{number}"


def record_opt_out(table: Table, number: str, source: str) -> None:
    """Remember that number opted out (no TTL: opt-outs never expire)."""
    table.put({"pk": key(number), "number": number, "source": source, "at": clock.now()})


def remove_opt_out(table: Table, number: str) -> None:
    """Forget a number's opt-out (it texted START)."""
    table.delete(key(number))


def apply_keyword(
    table: Table, message_sid: str, word: str, number: str, *, replay_key: str, window: float
) -> bool:
    """Apply STOP or START once per MessageSid and per signed request, in one transaction with
    the markers that say so: False when either was seen before (nothing changes).

    Written together, a marker can never exist without its change: a STOP whose write failed is
    applied by Twilio's retry, and a START replayed later never undoes the STOP that followed.

    Raises:
        StorageError: nothing was written (the webhook fails; Twilio's retry applies it).
    """
    now = clock.now()
    change: dict[str, Any]
    if word == "stop":
        change = {"put": {"pk": key(number), "number": number, "source": "keyword", "at": now}}
    else:
        change = {"delete": key(number)}
    try:
        table.transact(
            [
                {
                    "put": {"pk": replay_key, "at": now, "expires_at": int(now + window)},
                    "condition": "attribute_not_exists(pk) OR expires_at < :now",
                    "values": {":now": int(now)},
                },
                {
                    "put": {"pk": f"keyword#{message_sid}", "at": now},
                    "condition": "attribute_not_exists(pk)",
                },
                change,
            ]
        )
    except ConditionFailedError:
        return False
    return True


def is_opted_out(table: Table, number: str) -> bool:
    """Whether number has opted out."""
    return table.get(key(number)) is not None


def opted_out(table: Table, numbers: list[str]) -> set[str]:
    """Which of numbers have opted out (batched reads)."""
    found = table.get_many([key(n) for n in numbers])
    return {item["number"] for item in found.values()}
