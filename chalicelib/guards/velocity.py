"""Velocity limits: how many messages and calls one number, one exchange and the whole app get.

Fixed windows (the UTC hour, the UTC day), one DynamoDB item per counter and window, keyed by
the window so a new window starts at zero without a reset; `expires_at` (the table's TTL) clears
the old ones. A count is a conditional `ADD n :one` (`n < :limit`): the counter never passes its
limit however many senders race. With one counter applicable (the default: per destination) a
send costs one UpdateItem; with several (the prefix or day limits set) one TransactWriteItems
updates them all or none, so a refusal by one never leaves another counted.

Every count carries its writer's token (`last`): a write applied whose answer was lost, and
which the SDK's retry then meets as a failed condition, is recognised as ours, not as a refusal.

Where the count is taken, so that no retry counts twice and no count's failure sends twice or
loses a message (docs/guards.md, "Velocity limits"):
- POST /messages (sent now or queued for its pacing slot) and POST /calls count in the request,
  before the record is written: over a limit, 429 and nothing written; the record then carries
  `counted`, so the worker's retries of it never count again. A run that took over an earlier
  run's Idempotency-Key claim counts only if that run wrote no record.
- The worker counts a message without `counted` (scheduled, broadcast, forwarded, notified)
  after its claim, right before Twilio; over a limit the message goes back to `scheduled` for
  the window's end (no attempt counted); its retries carry `counted` on the writes that already
  reschedule them.
- /sms counts what it sends back or forwards against the texter's daily cap, once per message.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock
from chalicelib.core.errors import StorageError, TryLaterError

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext
    from chalicelib.aws.parameters import Parameters

logger = logging.getLogger(__name__)

HOUR = 3600
DAY = 86400
PER_DESTINATION = "outbound/max_per_destination_per_hour"
PER_PREFIX = "outbound/max_per_prefix_per_hour"
PER_DAY = "outbound/max_per_day"
REPLIES_PER_SENDER = "inbound/max_replies_per_sender_per_day"
DEFAULTS = {PER_DESTINATION: 10, PER_PREFIX: None, PER_DAY: None, REPLIES_PER_SENDER: 20}
# What the per-prefix limit strips: the subscriber digits, leaving the exchange that SMS
# pumping walks through (+1 510 555 0000 … 9999).
SUBSCRIBER_DIGITS = 4
# Messages to numbers the owner chose (sms/forward_to, a twimlet's notification targets) count
# in the day's total only: no caller chooses where they go.
OWNER_CHOSEN = ("fwd-", "ntf-")
# A counter outlives its window by this much (DynamoDB deletes expired items within days).
KEEP = HOUR
# Concurrent transactions on one counter (the day's) cancel each other; the SDK does not retry.
_CONFLICT_ROUNDS = 3


class Limit(NamedTuple):
    """One counter a send must fit in."""

    parameter: str
    key: str
    limit: int
    ends: float  # when its window ends and the counter starts afresh


class Refusal(NamedTuple):
    """The limits a send did not fit in, and when the last of their windows frees."""

    limits: list[Limit]
    until: float

    def describe(self) -> str:
        """Which parameters refused, for the answer and the log."""
        return ", ".join(f"{lim.parameter} ({lim.limit})" for lim in self.limits)


def hour_window(now: float) -> tuple[int, float]:
    """The UTC hour holding now: its number since the epoch and its end."""
    index = int(now // HOUR)
    return index, float((index + 1) * HOUR)


def day_window(now: float) -> tuple[int, float]:
    """The UTC day holding now: its number since the epoch and its end (midnight UTC)."""
    index = int(now // DAY)
    return index, float((index + 1) * DAY)


def retry_after(until: float, now: float) -> int:
    """Whole seconds from now until until, at least one (a Retry-After header's value)."""
    return max(1, math.ceil(until - now))


def prefix(number: str) -> str:
    """The number without its subscriber digits."""
    return number[:-SUBSCRIBER_DIGITS]


def setting(values: Parameters, name: str) -> int | None:
    """A limit from its parameter: a positive whole number, "off" for none, else the default.

    An unusable value is logged and the default holds: a typo must not switch a guard off.
    """
    raw = values.optional(name)
    if raw is None or not raw.strip():
        return DEFAULTS[name]
    text = raw.strip().lower()
    if text == "off":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    logger.error("unusable velocity limit; the default holds", extra={"parameter": name})
    return DEFAULTS[name]


def send_limits(values: Parameters, to: str, now: float, *, owner_chosen: bool = False) -> list:
    """The counters a message or call to to must fit in at now."""
    hour, hour_ends = hour_window(now)
    day, day_ends = day_window(now)
    limits = []
    wanted = [(PER_DAY, f"velocity#day#{day}", day_ends)]
    if not owner_chosen:
        wanted += [
            (PER_DESTINATION, f"velocity#to#{to}#{hour}", hour_ends),
            (PER_PREFIX, f"velocity#prefix#{prefix(to)}#{hour}", hour_ends),
        ]
    for name, key, ends in wanted:
        limit = setting(values, name)
        if limit is not None:
            limits.append(Limit(name, key, limit, ends))
    return limits


def take(table: Table, limits: list[Limit], token: str) -> Refusal | None:
    """Count one send in every limit, all or none; the refusal when one is full.

    token marks the write as this send's: a retried write that meets it was applied.

    Raises:
        StorageError: DynamoDB could not count (nothing is known to be counted).
    """
    if not limits:
        return None
    writes = [_count(limit, token) for limit in limits]
    if len(writes) == 1:
        try:
            write = writes[0]
            table.update(
                write["update"],
                write["expression"],
                condition=write["condition"],
                names=write["names"],
                values=write["values"],
                returning=False,
            )
        except ConditionFailedError as exc:
            current = exc.current or {}
            if current.get("last") == token:
                return None  # applied, its answer lost; the SDK's retry met our own count
            return Refusal(limits, limits[0].ends)
        return None
    for round_ in range(_CONFLICT_ROUNDS):
        try:
            table.transact(writes)
            return None
        except ConditionFailedError as exc:
            return _refusal(table, limits, exc.reasons, token)
        except StorageError as exc:
            if "TransactionCanceled" not in str(exc) or round_ == _CONFLICT_ROUNDS - 1:
                raise
            time.sleep(0.02 * (round_ + 1))  # another send's transaction held a counter
    raise AssertionError("not reached")


def _count(limit: Limit, token: str) -> dict[str, Any]:
    return {
        "update": limit.key,
        "expression": "ADD n :one SET expires_at = :expires, #last = :token",
        "condition": "(attribute_not_exists(n) OR n < :limit) "
        "AND (attribute_not_exists(#last) OR #last <> :token)",
        "names": {"#last": "last"},
        "values": {
            ":one": 1,
            ":limit": limit.limit,
            ":token": token,
            ":expires": int(limit.ends) + KEEP,
        },
    }


def _refusal(table: Table, limits: list[Limit], reasons: list[str], token: str) -> Refusal | None:
    counters = table.get_many([limit.key for limit in limits])
    if all(counters.get(limit.key, {}).get("last") == token for limit in limits):
        return None  # our transaction, applied, its answer lost; the SDK's retry met it
    full = (
        [
            limit
            for limit, reason in zip(limits, reasons or [], strict=False)
            if reason == "ConditionalCheckFailed"
        ]
        or [limit for limit in limits if counters.get(limit.key, {}).get("n", 0) >= limit.limit]
        or limits
    )
    return Refusal(full, max(limit.ends for limit in full))


# --- the API --------------------------------------------------------------------------------


def admit(ctx: ApiContext, to: str, record_key: str) -> None:
    """Count a message or call the API sends now (or queues for its pacing slot).

    A run that took over an earlier run's Idempotency-Key claim does not count when that run
    wrote the record: it counted then, and this run answers from the record.

    Raises:
        TryLaterError: over a limit (429 with Retry-After until the window frees).
        StorageError: the count could not be taken (503; nothing written, nothing sent).
    """
    if ctx.committed and ctx.table.get(record_key) is not None:
        return
    now = clock.now()
    limits = send_limits(ctx.parameters, to, now)
    refused = take(ctx.table, limits, record_key)
    if refused is None:
        return
    wait = retry_after(refused.until, now)
    logger.warning(
        "velocity limit reached; request refused",
        extra={"to": to, "limits": refused.describe(), "retry_after": wait},
    )
    raise TryLaterError(
        f"over the velocity limit {refused.describe()} for this destination; "
        f"try again in {wait} seconds",
        retry_after=wait,
        reason="rate_limited",
    )


# --- /sms -----------------------------------------------------------------------------------


def reply_allowed(table: Table, values: Parameters, sender: str, message_sid: str) -> bool:
    """Count one inbound message's replies and forwards against its sender's daily cap; False
    when over it (nothing is to be sent back or forwarded).

    Raises:
        StorageError: the cap could not be counted.
    """
    limit = setting(values, REPLIES_PER_SENDER)
    if limit is None or not sender:
        return True
    day, ends = day_window(clock.now())
    cap = Limit(REPLIES_PER_SENDER, f"velocity#replies#{sender}#{day}", limit, ends)
    if take(table, [cap], message_sid) is None:
        return True
    logger.warning(
        "daily reply cap reached for this sender; no reply or forward",
        extra={"from": sender, "limit": limit, "message_sid": message_sid},
    )
    return False
