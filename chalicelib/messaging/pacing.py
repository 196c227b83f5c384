"""Send pacing across every worker: send slots reserved from one DynamoDB counter.

Every send takes a slot: the dispatcher reserves one per message it enqueues, and so does every
other way a message reaches the queue (forwards, notifications, retries, reconciled requeues,
immediate API sends); each gets an SQS delay up to its slot, so the queue releases messages at
SWITCHBOARD_SEND_RATE no matter how many workers read it. The dispatcher's reservations are
limited to a short horizon, so a large backlog waits in the table (as due messages) rather than
as long SQS delays.
"""

from __future__ import annotations

from chalicelib.aws.storage import ConditionFailedError, Table

LIMITER_KEY = "limiter#send"
HORIZON = 120.0  # seconds of sending reserved ahead at most


def capacity(table: Table, rate: float, now: float, horizon: float = HORIZON) -> int:
    """How many slots can still be reserved within the horizon."""
    item = table.get(LIMITER_KEY) or {}
    start = max(now, item.get("next_ms", 0) / 1000)
    return max(0, int((now + horizon - start) * rate))


def delay(table: Table, rate: float, now: float, *, earliest: float = 0.0) -> float:
    """Reserve one slot no sooner than earliest seconds from now; returns its delay from now.

    Raises:
        StorageError: DynamoDB is unreachable.
    """
    (slot,) = reserve(table, 1, rate, now + earliest)
    return max(0.0, slot - now)


def reserve(table: Table, count: int, rate: float, now: float) -> list[float]:
    """Reserve count consecutive slots at rate; returns their epoch times.

    Raises:
        StorageError: DynamoDB is unreachable.
    """
    if count <= 0:
        return []
    interval = 1.0 / rate
    for _ in range(20):
        item = table.get(LIMITER_KEY) or {}
        previous = item.get("next_ms")
        start = max(now, (previous or 0) / 1000)
        # Whole milliseconds: the condition compares exactly what was stored.
        following = int((start + count * interval) * 1000)
        try:
            if previous is None:
                table.put(
                    {"pk": LIMITER_KEY, "next_ms": following},
                    condition="attribute_not_exists(pk)",
                )
            else:
                table.update(
                    LIMITER_KEY,
                    "SET next_ms = :new",
                    condition="next_ms = :old",
                    values={":new": following, ":old": previous},
                    returning=False,
                )
        except ConditionFailedError:
            continue  # another dispatcher reserved first: read again
        return [start + i * interval for i in range(count)]
    raise ConditionFailedError(None)
