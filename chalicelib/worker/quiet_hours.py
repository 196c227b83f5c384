"""Quiet hours at every send: a message whose window is closed waits for its next opening."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chalicelib.api.validation import ValidationError
from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.messaging import messages, timing

logger = logging.getLogger(__name__)


def hold(table: Table, record: dict[str, Any], now: float, retention_days: float) -> bool:
    """True when record's window is closed at now; it then goes back to `scheduled` for the
    window's next opening (the dispatcher enqueues it then), and the claim's attempt is not
    counted. record is the worker's claim (`sending`)."""
    try:
        window = timing.from_stored(record.get("window"))
    except ValidationError:
        logger.warning("unreadable quiet hours on a message; ignored", extra={"id": record["id"]})
        return False
    if window is None:
        return False
    opening = timing.next_opening(datetime.fromtimestamp(now, UTC), window).timestamp()
    if opening <= now:
        return False
    if put_back(table, record, opening, now, retention_days):
        logger.info(
            "outside the message's quiet hours; waits for the next opening",
            extra={"id": record["id"], "opens_at": round(opening)},
        )
    return True


def put_back(
    table: Table, record: dict[str, Any], at: float, now: float, retention_days: float
) -> bool:
    """Return the worker's claim (`sending`) to `scheduled` for at, not counting its attempt
    (the dispatcher enqueues it then); False when the record moved on meanwhile (canceled, a
    late callback): not ours to send either way."""
    history = record.get("history") or []
    last = history[-1] if history else {}
    claimed_now = last.get("status") == "sending" and last.get("at") == record.get(
        "attempt_started_at"
    )
    # The claim's own "sending" entry becomes this one: nothing was sent.
    entry = {"status": "scheduled", "at": now}
    if claimed_now:
        history_set = f"history[{len(history) - 1}] = :entry"
        values: dict[str, Any] = {":entry": entry}
    else:
        history_set = "history = list_append(if_not_exists(history, :empty), :entries)"
        values = {":entries": [entry], ":empty": []}
    removes = ["ambiguous", "attempt_started_at"]
    if int(record.get("attempts", 0)) <= 1:
        removes.append("first_attempt_at")
    expires = max(int(record.get("expires_at", 0)), messages.expires_at(at, retention_days))
    try:
        table.update(
            record["pk"],
            "SET #status = :scheduled, #state = :scheduled, state_at = :at, send_at = :at, "
            f"updated_at = :now, attempts = attempts - :one, expires_at = :expires, {history_set} "
            f"REMOVE {', '.join(removes)}",
            condition="#status = :sending AND attempt_started_at = :started",
            names={"#status": "status", "#state": "state"},
            values={
                **values,
                ":scheduled": "scheduled",
                ":sending": "sending",
                ":at": at,
                ":now": now,
                ":one": 1,
                ":expires": expires,
                ":started": record.get("attempt_started_at"),
            },
            returning=False,
        )
    except ConditionFailedError:
        return False
    return True
