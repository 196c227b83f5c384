"""The schedule triggers: enqueue due messages at the paced rate, and recover lost ones.

- dispatch (every minute, and right after a broadcast is created): claims due `scheduled`
  messages `scheduled → queued` with a conditional update before enqueuing them, so overlapping
  runs never double-enqueue; re-enqueues messages left `queued` without a send attempt for five
  minutes (a run that died between claiming and enqueuing).
- reconcile (every 15 minutes): messages `sending` whose mark (state_at: the attempt's start, or
  when an unclear answer is to be looked up) is over ten minutes old (a worker that died after
  Twilio accepted but before the SID was stored) are looked up in Twilio's Messages list: found
  → `sent` with its SID (or Twilio's failure); absent → `queued` again, only if no worker took
  the record since it was read.
"""

from __future__ import annotations

import contextvars
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.aws import clients, jobs
from chalicelib.aws.storage import BY_STATE, ConditionFailedError, Table
from chalicelib.core import clock, settings
from chalicelib.messaging import calls, deps, messages, pacing
from chalicelib.telephony.twilio_rest import TwilioError
from chalicelib.worker import holds
from chalicelib.worker.sender import record_found

logger = logging.getLogger(__name__)

LOOKAHEAD = 60.0  # claim messages due within the next minute; SQS delays hold them to the second
STALE_QUEUED = 300.0
STALE_SENDING = 600.0
# A call without a clear answer is looked up once its callbacks had time to come (if any).
CALL_CHECK_AFTER = 120.0
_THREADS = 8
# Delays are counted afresh for every hundred messages enqueued (ten SQS requests).
_ENQUEUE_CHUNK = 100


def _now(fixed: float | None) -> float:
    return clock.now() if fixed is None else fixed


def _parallel(function: Any, items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        # Each item in a copy of this context, so the threads' AWS calls keep its patience.
        futures = [pool.submit(contextvars.copy_context().run, function, i) for i in items]
        return [future.result() for future in futures]


@clients.patience(clients.WORKER)
def dispatch(now: float | None = None) -> dict[str, int]:
    """Enqueue what is due, within the pacing horizon; returns counts for the log."""
    config = settings.load()
    table = deps.table(config)
    fixed, now = now, _now(now)  # a fixed now (tests) holds throughout; else time moves on
    budget = pacing.capacity(table, config.send_rate, now)
    due = _due(table, "scheduled", now + LOOKAHEAD, budget)

    def claim(item: dict[str, Any]) -> tuple[str, float] | None:
        message_id = item["pk"].split("#", 1)[1]
        moved = messages.try_move(
            table,
            message_id,
            "queued",
            sources=("scheduled",),
            now=now,
            due=item["state_at"],
            returning=False,  # the claim's success is all this needs, not the record
        )
        return (message_id, float(item["state_at"])) if moved is not None else None

    claimed = [c for c in _parallel(claim, due) if c]
    stale = _due(table, "queued", now - STALE_QUEUED, max(0, budget - len(claimed)))
    recovered = [c for c in _parallel(lambda item: _reclaim(table, item, now), stale) if c]
    # Messages the daily budget held, once it allows them (guards/budget.py).
    released = holds.release_held(table, config, now, budget - len(claimed) - len(recovered))
    batch = claimed + recovered + released
    # Slots start when the claimed messages reach the queue, not when this run started:
    # claiming a thousand takes seconds, and delays counted from the start would put this run's
    # sends on top of the next run's, above the rate.
    slots = pacing.reserve(table, len(batch), config.send_rate, _now(fixed))
    for start in range(0, len(batch), _ENQUEUE_CHUNK):
        at = _now(fixed)
        # SQS delays are whole seconds: a send time rounds up (never early), a pacing slot to
        # the nearest second (the rate holds on average; within a second messages may bunch).
        entries = [
            (
                messages.send_job(message_id, max(send_at, slot), at),
                max(math.ceil(send_at - at), round(slot - at), 0),
            )
            for (message_id, send_at), slot in zip(
                batch[start : start + _ENQUEUE_CHUNK],
                slots[start : start + _ENQUEUE_CHUNK],
                strict=True,
            )
        ]
        try:
            jobs.defer_many("send", entries)
        except jobs.JobQueueError:
            # They stay `queued`; the stale sweep of a later run enqueues them again.
            left = len(batch) - start
            logger.error("could not enqueue claimed messages", extra={"count": left})
            break
    counts = {"claimed": len(claimed), "requeued": len(recovered), "budget": budget}
    counts["released"] = len(released)
    # An idle run (most minutes) says nothing above DEBUG: CloudWatch bills every line.
    logger.log(logging.INFO if batch else logging.DEBUG, "dispatch run", extra=counts)
    return counts


def dispatch_job(payload: dict[str, Any]) -> None:
    """Job "dispatch": a dispatcher run outside the minute trigger (a new broadcast starts)."""
    dispatch()


def _due(table: Table, state: str, until: float, limit: int) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    found: list[dict[str, Any]] = []
    start = None
    while len(found) < limit:
        items, start = table.query(
            BY_STATE,
            "state",
            state,
            sort_key="state_at",
            upper=until,
            limit=min(1000, limit - len(found)),
            start=start,
        )
        found.extend(items)
        if not start:
            break
    return found


def _reclaim(table: Table, item: dict[str, Any], now: float) -> tuple[str, float] | None:
    """Take a stale `queued` message for re-enqueuing, unless another run took it first."""
    try:
        table.update(
            item["pk"],
            "SET state_at = :now",
            condition="#status = :queued AND state_at = :seen",
            names={"#status": "status"},
            values={":now": now, ":queued": "queued", ":seen": item["state_at"]},
            returning=False,
        )
    except ConditionFailedError:
        return None
    return item["pk"].split("#", 1)[1], now


@clients.patience(clients.WORKER)
def reconcile(now: float | None = None) -> dict[str, int]:
    """Settle messages stuck in `sending`; returns counts for the log."""
    config = settings.load()
    table = deps.table(config)
    now = clock.now() if now is None else now
    calls_settled = _settle_calls(table, config, now)
    stuck = _due(table, "sending", now - STALE_SENDING, 1000)
    if not stuck:
        return {"found": 0, "requeued": 0, **calls_settled}
    twilio = deps.twilio(config)
    found = requeued = 0
    for item in stuck:
        record = table.get(item["pk"])
        if record is None or record["status"] != "sending":
            continue
        try:
            match = twilio.find_message(
                to=record["to"],
                sender=record["sender"],
                body=record.get("body"),
                since=record.get("first_attempt_at", record.get("attempt_started_at", now)),
                taken=lambda sid: messages.sid_taken(table, sid),
            )
        except TwilioError:
            logger.warning("reconcile lookup failed; will try next run", extra={"id": record["id"]})
            continue
        if match:
            record_found(table, record["id"], match)
            found += 1
        elif messages.try_move(
            table,
            record["id"],
            "queued",
            sources=("sending",),
            now=now,
            remove_fields=("ambiguous",),
            # Only as it was when read: a worker that took the record since (its lookup or
            # its attempt moved state_at) owns it, and a second send would follow.
            also="state_at = :seen",
            also_values={":seen": record.get("state_at")},
        ):
            requeued += 1
            messages.enqueue_send(table, record["id"])
    counts = {"found": found, "requeued": requeued, **calls_settled}
    logger.log(
        logging.INFO if any(counts.values()) else logging.DEBUG, "reconcile run", extra=counts
    )
    return counts


def _settle_calls(table: Table, config: settings.Settings, now: float) -> dict[str, int]:
    """Calls placed without a clear answer and no callback since: ask Twilio's Calls list."""
    unconfirmed = _due(table, calls.UNCONFIRMED, now - CALL_CHECK_AFTER, 1000)
    counts = {"calls_found": 0, "calls_not_placed": 0}
    if not unconfirmed:
        return counts
    twilio = deps.twilio(config)
    for item in unconfirmed:
        record = table.get(item["pk"])
        if record is None or record.get("state") != calls.UNCONFIRMED:
            continue
        try:
            outcome = calls.settle(table, twilio, record, now)
        except TwilioError:
            logger.warning("reconcile call lookup failed; next run", extra={"id": record["id"]})
            continue
        counts["calls_found" if outcome == "found" else "calls_not_placed"] += 1
    return counts
