"""Idempotency-Key for POST routes: the first answer is kept 24 h and replayed for equal payloads.

The key is claimed with a conditional put before anything happens, so concurrent duplicates get
409 "in progress" (or, later, the first answer), never a second send. Answers that changed
nothing (validation 400s, 5xx before any record was written) free the key; 2xx and Twilio's 4xx
answers are kept. A failure after the action committed (wrote the record a create may follow)
unlocks the claim instead, keeping its generation: the retry derives the same record ids, finds
the record and answers from it rather than creating again. A run that took over an earlier run's
claim counts as committed from the start: what that run wrote is unknown.
"""

from __future__ import annotations

import hashlib
import json
import os
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


class Claim(NamedTuple):
    """A claimed key: the kept answer when there is one, and the claim's generation.

    The generation is new for each fresh use of the key (and after it expired), and the same
    when a retry takes over the claim of a request that died: what the request derives from
    it (a broadcast's id) is then completed, not duplicated, and never mixed with an older use.
    """

    stored: Stored | None
    generation: str
    # Taken over from a run that died or failed: it may have written what a create follows, so
    # this run must never free the key, only unlock it (a freed key means new ids, a new send).
    inherited: bool = False


def claim(table: Table, idempotency_key: str, digest: str) -> Claim:
    """Claim the key for this payload; the kept answer comes back when it was answered before.

    Raises:
        KeyConflictError: another payload holds the key, or its first request is in progress.
    """
    now = clock.now()
    generation = os.urandom(8).hex()
    item = {
        "pk": _key(idempotency_key),
        "digest": digest,
        "state": "in_progress",
        "generation": generation,
        "locked_until": now + LOCK,
        "expires_at": int(now + TTL),
    }
    try:
        table.put(
            item,
            condition="attribute_not_exists(pk) OR expires_at < :now",
            values={":now": int(now)},
        )
        return Claim(None, generation)
    except ConditionFailedError as exc:
        current = exc.current or table.get(_key(idempotency_key)) or {}
    if current.get("generation") == generation:
        # Our own put: it was applied, its answer lost, and the SDK's retry met it.
        return Claim(None, generation)
    if current.get("digest") != digest:
        raise KeyConflictError("Idempotency-Key was used with a different payload")
    if current.get("state") == "done":
        return Claim(Stored(int(current["status"]), json.loads(current["answer"])), "")
    if current.get("locked_until", now) >= now:
        raise KeyConflictError("a request with this Idempotency-Key is in progress")
    # The first request died holding the key: take over its claim, and its generation.
    try:
        table.update(
            _key(idempotency_key),
            "SET locked_until = :until",
            condition="#state = :progress AND locked_until = :seen AND digest = :digest",
            names={"#state": "state"},
            values={
                ":until": now + LOCK,
                ":progress": "in_progress",
                ":seen": current["locked_until"],
                ":digest": digest,
            },
            returning=False,
        )
    except ConditionFailedError:
        raise KeyConflictError("a request with this Idempotency-Key is in progress") from None
    return Claim(None, str(current.get("generation") or ""), inherited=True)


def keep(
    table: Table, idempotency_key: str, generation: str, status: int, body: dict[str, Any]
) -> None:
    """Keep the answer for replays (if the claim is still this generation's).

    Raises:
        ConditionFailedError: the claim is another request's now.
    """
    table.update(
        _key(idempotency_key),
        "SET #state = :done, #status = :status, answer = :answer",
        condition="generation = :generation",
        names={"#state": "state", "#status": "status"},
        values={
            ":done": "done",
            ":status": status,
            ":answer": json.dumps(body),
            ":generation": generation,
        },
        returning=False,
    )


def unlock(table: Table, idempotency_key: str, generation: str) -> None:
    """End this request's hold on the key but keep its generation, so a retry at once takes the
    claim over and derives the same ids (the action wrote something a retry must find).

    Raises:
        ConditionFailedError: the claim is not this generation's, or no longer in progress.
    """
    table.update(
        _key(idempotency_key),
        "SET locked_until = :zero",
        condition="#state = :progress AND generation = :generation",
        names={"#state": "state"},
        values={":zero": 0, ":progress": "in_progress", ":generation": generation},
        returning=False,
    )


def release(table: Table, idempotency_key: str, generation: str) -> None:
    """Free the key: the answer changed nothing (only this generation's claim is removed).

    Raises:
        ConditionFailedError: the claim is another generation's.
    """
    table.delete(
        _key(idempotency_key),
        condition="generation = :generation",
        values={":generation": generation},
    )
