"""The SQS send queue: enqueue job bodies (with delays) and push back records for a retry."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from chalicelib.aws import clients

logger = logging.getLogger(__name__)

MAX_DELAY = 900  # SQS's longest DelaySeconds
MAX_VISIBILITY = 43_200  # SQS's longest visibility timeout


class QueueError(Exception):
    """SQS could not be reached or refused the request."""


_urls: dict[str, str] = {}


def get_client() -> Any:
    """This container's SQS client."""
    return clients.client("sqs")


def reset() -> None:
    """Forget the queue URLs and the clients (tests)."""
    _urls.clear()
    clients.reset()


# SQS's action names -> the botocore client's methods.
_OPERATIONS = {
    "GetQueueUrl": "get_queue_url",
    "SendMessageBatch": "send_message_batch",
    "ChangeMessageVisibility": "change_message_visibility",
}


def _call(action: str, **request: Any) -> Any:
    """The one place SQS's errors become QueueError."""
    # botocore is loaded by the client by now; at module scope it would cost every importer.
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(get_client(), _OPERATIONS[action])(**request)
    except (BotoCoreError, ClientError) as exc:
        raise QueueError(f"{action} failed: {clients.failure(exc)}") from exc


def queue_url(name: str) -> str:
    """The queue's URL, looked up once per container."""
    url = _urls.get(name)
    if url is None:
        url = _urls[name] = _call("GetQueueUrl", QueueName=name)["QueueUrl"]
    return url


def send(name: str, body: dict[str, Any], *, delay: float = 0) -> None:
    """Enqueue one job body.

    Raises:
        QueueError: SQS refused or could not be reached.
    """
    send_many(name, [(body, delay)])


def send_many(name: str, entries: list[tuple[dict[str, Any], float]]) -> None:
    """Enqueue job bodies with their delays (whole seconds, rounded up), ten per request.

    Entries that SQS reports as failed are retried.

    Raises:
        QueueError: some entries could not be enqueued after retries.
    """
    url = queue_url(name)
    for start in range(0, len(entries), 10):
        pending = {
            str(i): {
                "Id": str(i),
                "MessageBody": json.dumps(body, separators=(",", ":")),
                "DelaySeconds": max(0, min(MAX_DELAY, math.ceil(delay))),
            }
            for i, (body, delay) in enumerate(entries[start : start + 10], start)
        }
        for _ in range(3):
            answer = _call("SendMessageBatch", QueueUrl=url, Entries=list(pending.values()))
            for done in answer.get("Successful", []):
                pending.pop(done["Id"], None)
            if not pending:
                break
        if pending:
            raise QueueError(f"{len(pending)} entries could not be enqueued")


def retry_later(name: str, receipt_handle: str, seconds: float) -> None:
    """Make a received record visible again after seconds (the backoff before its redelivery)."""
    _call(
        "ChangeMessageVisibility",
        QueueUrl=queue_url(name),
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=max(0, min(MAX_VISIBILITY, int(seconds))),
    )
