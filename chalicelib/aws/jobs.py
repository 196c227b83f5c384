"""Background jobs on the send queue: defer one from anywhere, run a batch in the worker.

A job is a JSON body {"kind", "payload"}. The worker runs each record's handler; a handler that
raises RetryLater is redelivered after its delay, any other exception after the queue's
visibility timeout, and a record that fails five receives goes to the dead-letter queue. Handlers
must be idempotent: SQS delivers at least once.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from chalicelib.aws import clients, queue, storage
from chalicelib.core import clock, logs, settings

logger = logging.getLogger(__name__)

# kind -> "module:function"; imported on first use (the worker's INIT preloads the send path,
# chalicelib/runtime/warmup.py), so a job of another kind loads only what it runs.
HANDLERS = {
    "send": "chalicelib.worker.sender:send_job",
    "price": "chalicelib.worker.prices:price_job",
    "dispatch": "chalicelib.worker.dispatch:dispatch_job",
    "sms_notification": "chalicelib.worker.notifications:sms_notification",
    "voicemail_notification": "chalicelib.twimlets.voicemail:deliver_voicemail_notification",
    "erase": "chalicelib.api.erasure:erase_job",
}
# How long an event's job is remembered (Twilio retries within minutes; replays come later).
ONCE_TTL = 30 * 24 * 3600
MAX_DELAY = queue.MAX_DELAY  # SQS's longest delay: a job deferred longer comes early
_THREADS = 10  # a batch's records run side by side: Twilio latency, not CPU, bounds a send


class JobQueueError(Exception):
    """The job could not be queued."""


class RetryLater(Exception):
    """The job should run again after delay seconds (backoff), not at once."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class Job(NamedTuple):
    """The queue record a handler runs for."""

    message_id: str


_current: contextvars.ContextVar[Job | None] = contextvars.ContextVar("job", default=None)


def current() -> Job | None:
    """The job being run in this thread, if any."""
    return _current.get()


def defer(kind: str, payload: dict[str, Any], *, delay: float = 0, once: str | None = None) -> bool:
    """Queue a job for the worker; False when `once` names an event already queued for.

    With once (say "voicemail:RE…:email"), the job is queued at most once per event, however
    often the webhook that causes it is delivered: a marker item is claimed first (kept
    ONCE_TTL) and given back when the queue refuses the job, so a retry can queue it then.

    Raises:
        JobQueueError: the queue or the table is not configured or cannot be reached.
    """
    if kind not in HANDLERS:
        raise ValueError(f"unknown job kind {kind}")
    try:
        config = settings.load()
        name = config.require_queue()
        table = storage.get_table(config.require_table()) if once else None
        if table is not None and once is not None and not _claim_event(table, once):
            return False
        try:
            queue.send(name, {"kind": kind, "payload": payload}, delay=delay)
        except queue.QueueError:
            if table is not None:
                table.delete(_event_key(once or ""))
            raise
    except (settings.SettingError, queue.QueueError, storage.StorageError) as exc:
        raise JobQueueError(str(exc)) from exc
    return True


def _event_key(once: str) -> str:
    return "once#" + hashlib.sha256(once.encode()).hexdigest()[:40]


def _claim_event(table: storage.Table, once: str) -> bool:
    now = clock.now()
    writer = os.urandom(8).hex()
    try:
        table.put(
            {
                "pk": _event_key(once),
                "at": now,
                "expires_at": int(now + ONCE_TTL),
                "writer": writer,
            },
            condition="attribute_not_exists(pk) OR expires_at < :now",
            values={":now": int(now)},
        )
    except storage.ConditionFailedError as exc:
        if (exc.current or {}).get("writer") == writer:
            return True  # our own marker: applied, its answer lost, retried by the SDK
        logger.info("job for this event queued before; not again")
        return False
    return True


def defer_many(kind: str, entries: list[tuple[dict[str, Any], float]]) -> None:
    """Queue many jobs of one kind, each with its delay.

    Raises:
        JobQueueError: the queue is not configured or cannot be reached.
    """
    try:
        name = settings.load().require_queue()
        queue.send_many(name, [({"kind": kind, "payload": p}, d) for p, d in entries])
    except (settings.SettingError, queue.QueueError) as exc:
        raise JobQueueError(str(exc)) from exc


def _handler(kind: str) -> Callable[[dict[str, Any]], None]:
    module, _, function = HANDLERS[kind].partition(":")
    return getattr(importlib.import_module(module), function)


def _run(record: dict[str, Any], request_id: str | None) -> str | None:
    """Run one record; returns its messageId when it must be redelivered."""
    message_id = record.get("messageId", "")
    job = Job(message_id)
    _current.set(job)
    logs.start_invocation(handler="worker", request_id=request_id, job_id=message_id)
    try:
        body = json.loads(record["body"])
        kind, payload = body["kind"], body["payload"]
        handler = _handler(kind)
    except (ValueError, KeyError, TypeError):
        # Unreadable forever: retrying cannot help, and the log says which record it was.
        logger.error("dropped an unreadable queue record")
        return None
    try:
        handler(payload)
        return None
    except RetryLater as exc:
        logger.info(
            "job retries later",
            extra={"kind": kind, "reason": exc.reason, "delay_s": round(exc.delay, 1)},
        )
        try:
            queue.retry_later(settings.load().require_queue(), record["receiptHandle"], exc.delay)
        except (settings.SettingError, queue.QueueError):
            logger.warning("could not set the retry delay; the visibility timeout applies")
        return message_id
    except Exception as exc:
        # Any other failure is redelivered by SQS; the job itself is never dropped here. Our
        # own errors carry no values in their text, so it is logged; others by type only.
        detail = str(exc) if type(exc).__module__.startswith("chalicelib") else None
        logger.exception("job failed", extra={"kind": kind, "error": detail})
        return message_id


@clients.patience(clients.WORKER)
def handle_batch(event: Any) -> dict[str, Any]:
    """Run an SQS batch side by side and report the records to redeliver (batchItemFailures)."""
    raw = event.to_dict() if hasattr(event, "to_dict") else event
    records = raw.get("Records", [])
    context = getattr(event, "context", None)
    request_id = getattr(context, "aws_request_id", None)
    if len(records) <= 1:
        failed = [_run(record, request_id) for record in records]
    else:
        with ThreadPoolExecutor(max_workers=min(_THREADS, len(records))) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, _run, record, request_id)
                for record in records
            ]
            failed = [future.result() for future in futures]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed if m]}
