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
# The counter as this container last saw it: only which write reserve() tries first (a stale
# value costs one failed condition, never a wrong slot).
_seen_ms = 0


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

    While the counter is ahead of now (whenever sends are queued) a reservation is one atomic
    ADD, which concurrent senders cannot make each other lose; only a counter left behind now
    is moved up to now by a conditional write, which one of several racing senders wins while
    the others then ADD after it. So a crowd of senders never fails for contention (a read and
    compare-and-set lost 20 rounds in a row with a few dozen at once, a 500 for a webhook).
    Which write goes first follows where this container last saw the counter: an idle sender
    (the usual case for an API send) takes its slot in one write, not a failed ADD and a put.

    Raises:
        StorageError: DynamoDB is unreachable.
    """
    global _seen_ms
    if count <= 0:
        return []
    interval = 1.0 / rate
    # Whole milliseconds: conditions compare exactly what was stored.
    span = max(1, round(count * interval * 1000))
    now_ms = int(now * 1000)
    for _ in range(_ROUNDS):
        if _seen_ms < now_ms:  # behind now as far as this container knows: move it up to now
            try:
                table.put(
                    {"pk": LIMITER_KEY, "next_ms": now_ms + span},
                    condition="attribute_not_exists(pk) OR next_ms < :now",
                    values={":now": now_ms},
                )
                _seen_ms = now_ms + span
                return _slots(now_ms, count, interval)
            except ConditionFailedError:
                _seen_ms = now_ms  # at or ahead of now: ADD after it
        try:
            after = table.update(
                LIMITER_KEY,
                "ADD next_ms :span",
                condition="next_ms >= :now",
                values={":span": span, ":now": now_ms},
            )
            _seen_ms = after["next_ms"]
            return _slots(after["next_ms"] - span, count, interval)
        except ConditionFailedError:
            _seen_ms = 0  # no counter yet, or one behind now (another sender went idle)
    # Not reached in practice (each lost round means another sender moved the counter); a slot
    # without the ordering guarantee beats failing the send.
    after = table.update(LIMITER_KEY, "ADD next_ms :span", values={":span": span})
    return _slots(max(after["next_ms"] - span, now_ms), count, interval)


_ROUNDS = 5


def _slots(start_ms: int, count: int, interval: float) -> list[float]:
    start = start_ms / 1000
    return [start + i * interval for i in range(count)]
