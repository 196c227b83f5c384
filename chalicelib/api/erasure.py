"""Erasing one person's data: POST /erasures {"number"} and GET /erasures/{id} (SECURITY.md).

The job (on the send queue, so the API answers at once) scans the table a few pages per run,
re-queuing itself with where it stopped, and deletes every item that names the number in
`to`, `from` or `sender` (messages, calls, inbound texts) and its velocity counters. It keeps the
opt-out (`optout#<number>`: deleting it would let the app text someone who said STOP) and leaves
a message the worker is sending right now (deleting under it could lose its SID): both are
counted in the answer. A Scan reads every item, so an erasure costs one read of the whole
table; it is rare work. The erasure's own item holds a hash of the number, never the number.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from chalicelib.api import validation
from chalicelib.aws import jobs, storage
from chalicelib.core import clock, settings
from chalicelib.core.errors import NotFoundError

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

PAGES_PER_RUN = 20  # a job run's share of the table: well inside the worker's timeout
PAGE = 500
KEEP_DAYS = 30
# Velocity counters name the number in their key (guards.velocity); they expire within a day.
_CONDITION = (
    "#to = :n OR #from = :n OR #sender = :n OR begins_with(pk, :to) OR begins_with(pk, :replies)"
)
_NAMES = {"#to": "to", "#from": "from", "#sender": "sender"}


def key(erasure_id: str) -> str:
    return f"erasure#{erasure_id}"


def start(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """POST /erasures: queue the erasure of payload["number"]'s data; 202 with its id.

    Raises:
        ValidationError: number is missing or not E.164, or another key is given.
    """
    validation.only_keys(payload, ("number",))
    number = str(validation.phone_number(payload, "number", required=True))
    erasure_id = secrets.token_hex(16)
    now = clock.now()
    item = {
        "pk": key(erasure_id),
        "kind": "erasure",
        "id": erasure_id,
        "number_sha256": hashlib.sha256(number.encode()).hexdigest(),
        "status": "running",
        "deleted": 0,
        "kept_opt_out": int(ctx.table.get(f"optout#{number}") is not None),
        "in_flight": 0,
        "created_at": now,
        "updated_at": now,
        "expires_at": int(now + KEEP_DAYS * 86400),
    }
    ctx.table.put(item)
    jobs.defer("erase", {"id": erasure_id, "number": number, "start": None})
    return 202, view(item)


def get(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /erasures/{id}.

    Raises:
        NotFoundError: no such erasure.
    """
    item = ctx.table.get(key(ctx.path["id"]))
    if item is None or item.get("kind") != "erasure":
        raise NotFoundError("no erasure with this id")
    return 200, view(item)


def view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "status": item["status"],
        "deleted": int(item.get("deleted", 0)),
        "kept": {
            "opt_out": int(item.get("kept_opt_out", 0)),
            "sending_now": int(item.get("in_flight", 0)),
        },
        "created_at": clock.iso(float(item["created_at"])),
        "updated_at": clock.iso(float(item["updated_at"])),
    }


def erase_job(payload: dict[str, Any]) -> None:
    """Job "erase": a few pages of the scan, then the rest as a new job.

    Raises:
        StorageError: DynamoDB failed; the queue redelivers the job (deletes are idempotent).
    """
    table = storage.get_table(settings.load().require_table())
    number, start = str(payload["number"]), payload.get("start")
    counts = {"deleted": 0, "in_flight": 0}
    for _ in range(PAGES_PER_RUN):
        values = {":n": number, ":to": f"velocity#to#{number}#"}
        values[":replies"] = f"velocity#replies#{number}#"
        items, start = table.scan_page(_CONDITION, _NAMES, values, start=start, limit=PAGE)
        for item in items:
            if item.get("status") == "sending":
                counts["in_flight"] += 1
                continue
            table.delete(item["pk"])
            counts["deleted"] += 1
        if start is None:
            break
    done = start is None
    table.update(
        key(str(payload["id"])),
        "SET deleted = deleted + :d, in_flight = in_flight + :f, updated_at = :now, "
        "#status = :status",
        names={"#status": "status"},
        values={
            ":d": counts["deleted"],
            ":f": counts["in_flight"],
            ":now": clock.now(),
            ":status": "done" if done else "running",
        },
        returning=False,
    )
    if not done:
        jobs.defer("erase", {**payload, "start": start})
