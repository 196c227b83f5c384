"""What the worker does with a claimed message the guards will not let it send yet.

The guards (chalicelib/guards) decide: the day's budget is spent, a velocity limit is full.
Moving the message record (`sending → held`, back to `scheduled` for a window's end, `held →
queued`) is the worker's, with messaging's records: here, so that the guards import nothing of
messaging or the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.aws import parameters
from chalicelib.aws.storage import BY_STATE, ConditionFailedError, Table
from chalicelib.core import clock
from chalicelib.core.settings import Settings
from chalicelib.guards import budget, spend, velocity
from chalicelib.messaging import messages
from chalicelib.worker import quiet_hours

logger = logging.getLogger(__name__)


def budget_hold(table: Table, record: dict[str, Any], now: float, config: Settings) -> bool:
    """True when the budget is spent: the worker's claim (`sending`) becomes `held`, its attempt
    uncounted, for the dispatcher to release. A message that had an unclear answer is not held:
    its lookup has just found it absent, and a day's wait would let a late-listed create slip
    past the next one."""
    if record.get("unclear") or not budget.reached(
        table, parameters.load(config), spend.day_of(now)
    ):
        return False
    history = record.get("history") or []
    last = history[-1] if history else {}
    entry = {"status": budget.HELD, "at": now}
    if last.get("status") == "sending" and last.get("at") == record.get("attempt_started_at"):
        history_set, values = f"history[{len(history) - 1}] = :entry", {":entry": entry}
    else:
        history_set = "history = list_append(if_not_exists(history, :empty), :entries)"
        values = {":entries": [entry], ":empty": []}
    expires = max(int(record.get("expires_at", 0)), messages.expires_at(now, config.retention_days))
    try:
        table.update(
            record["pk"],
            "SET #status = :held, #state = :held, state_at = :now, updated_at = :now, "
            f"attempts = attempts - :one, expires_at = :expires, {history_set} "
            # A release starts afresh: not-accepted retries are bounded from the next attempt.
            "REMOVE ambiguous, attempt_started_at, first_attempt_at",
            condition="#status = :sending AND attempt_started_at = :started",
            names={"#status": "status", "#state": "state"},
            values={
                **values,
                ":held": budget.HELD,
                ":sending": "sending",
                ":now": now,
                ":one": 1,
                ":expires": expires,
                ":started": record.get("attempt_started_at"),
            },
            returning=False,
        )
    except ConditionFailedError:
        return True  # moved on meanwhile (canceled): not ours to send
    logger.warning("daily budget reached; message held", extra={"id": record["id"]})
    return True


def release_held(table: Table, config: Settings, now: float, most: int) -> list[tuple[str, float]]:
    """Move up to `most` held messages back to `queued` when the budget allows (a new day, or a
    higher budget); returns (id, due) for the dispatcher to enqueue. Each move is conditional
    (`held → queued`), so overlapping runs release a message once."""
    if most <= 0:
        return []
    items, _ = table.query(BY_STATE, "state", budget.HELD, limit=min(most, 1000))
    if not items:
        return []
    try:
        if budget.reached(table, parameters.load(config), spend.day_of(now)):
            return []
    except parameters.ParameterStoreError:
        logger.warning("parameter store unreachable; held messages wait for the next run")
        return []
    released = []
    for item in items:
        message_id = item["pk"].split("#", 1)[1]
        moved = messages.try_move(
            table, message_id, "queued", sources=(budget.HELD,), now=now, returning=False
        )
        if moved is not None:
            released.append((message_id, now))
    if released:
        logger.info("held messages released", extra={"count": len(released)})
    return released


def velocity_hold(table: Table, record: dict[str, Any], config: Settings) -> bool:
    """Count a claimed message before the worker sends it; True when it is over a limit and
    went back to `scheduled` for the end of the window (no attempt counted).

    A message counted before (record["counted"]: by the API, or an earlier attempt) is not
    counted again. After a count, record["counted"] is set for the retry writes to keep.

    Raises:
        StorageError: the count could not be taken (the worker retries the message later).
        ParameterStoreError: the limits could not be read.
    """
    if record.get("counted"):
        return False
    now = clock.now()
    owner_chosen = str(record["id"]).startswith(velocity.OWNER_CHOSEN)
    limits = velocity.send_limits(
        parameters.load(config), record["to"], now, owner_chosen=owner_chosen
    )
    # The token names this attempt: a later attempt (after a crash) is a new count.
    token = f"{record['pk']}#{record.get('attempt_started_at')}"
    refused = velocity.take(table, limits, token)
    if refused is None:
        record["counted"] = True
        return False
    if quiet_hours.put_back(table, record, refused.until, now, config.retention_days):
        logger.info(
            "velocity limit reached; the message waits for the window",
            extra={"id": record["id"], "limits": refused.describe(), "until": round(refused.until)},
        )
    return True
