"""Idempotency-Key for POST routes: the first answer is kept 24 h and replayed for equal payloads.

The key is claimed with a conditional put before anything happens, so concurrent duplicates get
409 "in progress" (or, later, the first answer), never a second send. Answers that changed
nothing (validation 400s, 5xx) free the key; 2xx and Twilio's 4xx answers are kept.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock

TTL = 24 * 3600
LOCK = 120  # an in-progress claim older than this belongs to a run that died
MAX_KEY_LENGTH = 255


class Stored(NamedTuple):
    """A kept answer."""

    status: int
    body: dict[str, Any]


class KeyConflictError(Exception):
    """The key is in use by another payload, or by a request still in progress."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def fingerprint(route: str, payload: dict[str, Any]) -> str:
    """A hash of the route and the JSON payload, independent of key order."""
    canonical = json.dumps([route, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _key(idempotency_key: str) -> str:
    return f"idem#{idempotency_key}"


def claim(table: Table, idempotency_key: str, digest: str) -> Stored | None:
    """Claim the key for this payload; returns the kept answer when it was answered before.

    Raises:
        KeyConflictError: another payload holds the key, or its first request is in progress.
    """
    now = clock.now()
    item = {
        "pk": _key(idempotency_key),
        "digest": digest,
        "state": "in_progress",
        "locked_until": now + LOCK,
        "expires_at": int(now + TTL),
    }
    try:
        table.put(
            item,
            condition="attribute_not_exists(pk) OR expires_at < :now OR "
            "(#state = :progress AND locked_until < :now AND digest = :digest)",
            names={"#state": "state"},
            values={":now": int(now), ":progress": "in_progress", ":digest": digest},
        )
        return None
    except ConditionFailedError as exc:
        current = exc.current or table.get(_key(idempotency_key)) or {}
    if current.get("digest") != digest:
        raise KeyConflictError("Idempotency-Key was used with a different payload")
    if current.get("state") != "done":
        raise KeyConflictError("a request with this Idempotency-Key is in progress")
    return Stored(int(current["status"]), json.loads(current["answer"]))


def keep(table: Table, idempotency_key: str, status: int, body: dict[str, Any]) -> None:
    """Keep the answer for replays."""
    table.update(
        _key(idempotency_key),
        "SET #state = :done, #status = :status, answer = :answer",
        names={"#state": "state", "#status": "status"},
        values={":done": "done", ":status": status, ":answer": json.dumps(body)},
        returning=False,
    )


def release(table: Table, idempotency_key: str) -> None:
    """Free the key: the answer changed nothing."""
    table.delete(_key(idempotency_key))
