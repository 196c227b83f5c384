"""Broadcasts: one body to up to 10,000 recipients, each a message paced by the dispatcher."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chalicelib.api import validation
from chalicelib.api.validation import ValidationError
from chalicelib.aws import jobs
from chalicelib.aws.storage import BY_BROADCAST
from chalicelib.core import clock
from chalicelib.core.errors import NotFoundError
from chalicelib.guards import destinations
from chalicelib.messaging import messages, optouts
from chalicelib.messaging.outbound import content, default_sender, quiet_hours, send_time

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 10_000
FIELDS = ("to", "body", "from", "media_urls", "send_at", "timezone", "not_before", "not_after")


RECIPIENTS_PAGE = 100  # one BatchGetItem


def key(broadcast_id: str) -> str:
    """The table key of a broadcast."""
    return f"bcast#{broadcast_id}"


def _recipients(value: Any) -> tuple[list[str], list[dict[str, str]]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECIPIENTS:
        raise ValidationError(f"to must be a list of 1 to {MAX_RECIPIENTS} numbers", "to")
    valid: list[str] = []
    rejected: list[dict[str, str]] = []
    seen: set[str] = set()
    for number in value:
        if not isinstance(number, str) or not validation.E164.fullmatch(number):
            rejected.append({"to": str(number), "reason": "invalid_number"})
        elif number in seen:
            rejected.append({"to": number, "reason": "duplicate"})
        else:
            seen.add(number)
            valid.append(number)
    return valid, rejected


# Refusals logged one line each up to here, then one line with the count: a broadcast to a list
# of foreign numbers must not write ten thousand log lines.
LOGGED_REFUSALS = 20


def _policy_split(
    policy: destinations.Policy, recipients: list[str]
) -> tuple[list[str], list[dict[str, str]]]:
    """The recipients the destination policy lets through, and the rejected ones with why."""
    kept: list[str] = []
    rejected: list[dict[str, str]] = []
    for number in recipients:
        refusal = policy.check(number)
        if refusal is None:
            kept.append(number)
            continue
        if len(rejected) < LOGGED_REFUSALS:
            refusal.log("broadcast")
        rejected.append({"to": number, "reason": refusal.reason})
    if len(rejected) > LOGGED_REFUSALS:
        logger.warning(
            "more broadcast destinations refused",
            extra={"where": "broadcast", "count": len(rejected) - LOGGED_REFUSALS},
        )
    return kept, rejected


def create(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """POST /broadcasts: record every recipient's message and start the paced sending; 202.

    Raises:
        ValidationError: bad input, naming the field.
    """
    validation.only_keys(payload, FIELDS)
    recipients, rejected = _recipients(payload.get("to"))
    body, media_urls = content(payload)
    send_at = send_time(payload)
    window = quiet_hours(payload)
    sender = validation.sender(payload) or default_sender(ctx, for_calls=False)
    recipients, refused = _policy_split(
        destinations.Policy.from_parameters(ctx.parameters), recipients
    )
    rejected += refused
    table = ctx.table
    opted = optouts.opted_out(table, recipients)
    rejected += [{"to": n, "reason": "opted_out"} for n in recipients if n in opted]
    recipients = [n for n in recipients if n not in opted]
    # Derived from this use of the Idempotency-Key when there is one, so a retry after a crash
    # mid-write completes the same broadcast instead of starting a second one (and a use of
    # the key after it expired starts a new one).
    scope = ctx.idempotency_scope
    broadcast_id = _digest(scope) if scope else messages.new_id()
    now = clock.now()
    due = send_at if send_at is not None else now
    # Each message's id names its recipient, not its position: a retry whose list lost an
    # opted-out number in between still maps every recipient to the same message.
    ids = [f"{broadcast_id}-{_digest(to)[:20]}" for to in recipients]
    existing = set(table.get_many([messages.key(i) for i in ids])) if scope else set()
    callback = ctx.callback_url(messages.STATUS_CALLBACK)
    records = [
        messages.new_record(
            message_id,
            to=to,
            sender=sender,
            body=body,
            media_urls=media_urls,
            status="scheduled",
            send_at=due,
            status_callback=callback,
            retention_days=ctx.settings.retention_days,
            broadcast_id=broadcast_id,
            now=now,
            window=window,
        )
        for message_id, to in zip(ids, recipients, strict=True)
        if messages.key(message_id) not in existing
    ]
    # From here a failure keeps the key's generation (unlocks, not frees it): the retry
    # derives the same broadcast and message ids and writes only what is missing.
    ctx.committed = True
    table.put_many(records)
    table.put(
        {
            "pk": key(broadcast_id),
            "id": broadcast_id,
            "kind": "broadcast",
            "count": len(recipients),
            "created_at": now,
            "send_at": due,
            "expires_at": messages.broadcast_expires_at(due, ctx.settings.retention_days),
        }
    )
    if send_at is None:
        # Start sending now, from the worker: claiming and enqueuing a large broadcast's first
        # slots inside this request could outlast API Gateway's 29 s on a small Lambda.
        try:
            jobs.defer("dispatch", {})
        except jobs.JobQueueError:
            logger.error("could not start the broadcast now; the minute trigger will")
    logger.info("broadcast created", extra={"id": broadcast_id, "count": len(recipients)})
    return 202, {"id": broadcast_id, "count": len(recipients), "rejected": rejected}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _statuses(ctx: ApiContext, broadcast_id: str) -> list[dict[str, Any]]:
    return list(ctx.table.query_all(BY_BROADCAST, "broadcast", broadcast_id))


def _load(ctx: ApiContext) -> dict[str, Any]:
    broadcast = ctx.table.get(key(ctx.path["id"]))
    if broadcast is None:
        raise NotFoundError("no broadcast with this id")
    return broadcast


def get(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /broadcasts/{id}: how many messages are in each state.

    Raises:
        NotFoundError: no such broadcast.
    """
    broadcast = _load(ctx)
    counts: dict[str, int] = {}
    for item in _statuses(ctx, broadcast["id"]):
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    answer = {"id": broadcast["id"], "count": broadcast["count"], "counts": counts}
    if (ctx.query.get("recipients") or [""])[-1].lower() == "true":
        answer.update(_recipients_page(ctx, broadcast["id"]))
    return 200, answer


def _recipients_page(ctx: ApiContext, broadcast_id: str) -> dict[str, Any]:
    """?recipients=true&limit=&next=: each recipient's message, a page at a time.

    Raises:
        ValidationError: a bad limit or next.
    """
    limit_text = (ctx.query.get("limit") or [str(RECIPIENTS_PAGE)])[-1]
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= RECIPIENTS_PAGE:
        raise ValidationError(f"limit must be 1 to {RECIPIENTS_PAGE}", "limit")
    start = validation.page_start((ctx.query.get("next") or [None])[-1], {"pk", "broadcast"})
    items, last = ctx.table.query(
        BY_BROADCAST, "broadcast", broadcast_id, limit=int(limit_text), start=start
    )
    found = ctx.table.get_many([item["pk"] for item in items])
    recipients = [
        {
            "id": record["id"],
            "to": record["to"],
            "status": record["status"],
            "sid": record.get("sid"),
            "error_code": record.get("error_code"),
        }
        for item in items
        if (record := found.get(item["pk"])) is not None
    ]
    return {"recipients": recipients, "next": validation.page_token(last)}


def cancel(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """DELETE /broadcasts/{id}: cancel every message not yet sending.

    Raises:
        NotFoundError: no such broadcast.
    """
    broadcast = _load(ctx)
    pending = [
        item["pk"].split("#", 1)[1]
        for item in _statuses(ctx, broadcast["id"])
        if item["status"] in messages.CANCELABLE
    ]

    def cancel_one(message_id: str) -> bool:
        moved = messages.try_move(ctx.table, message_id, "canceled", sources=messages.CANCELABLE)
        return moved is not None

    with ThreadPoolExecutor(max_workers=8) as pool:
        canceled = sum(pool.map(cancel_one, pending))
    logger.info("broadcast canceled", extra={"id": broadcast["id"], "canceled": canceled})
    status, view = get(payload, ctx)
    return status, {**view, "canceled": canceled}
