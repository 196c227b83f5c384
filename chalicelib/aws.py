"""AWS clients: built on first use, once per container, with timeouts that fit a webhook."""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[tuple[str, float, float, int, str | None], Any] = {}
_lock = threading.Lock()


def client(
    service: str,
    *,
    connect_timeout: float = 1.0,
    read_timeout: float = 3.0,
    attempts: int = 3,
    signature: str | None = None,
) -> Any:
    """This container's boto3 client for service with these settings.

    boto3 is imported here, not at module scope: it costs ~150 ms of CPU, paid only by the
    container whose route needs AWS. Endpoint, region and credentials come from the environment
    as boto3 reads them (AWS_ENDPOINT_URL for the local stack). signature is a botocore
    signature version, or "unsigned" for anonymous requests (public S3 buckets).
    """
    key = (service, connect_timeout, read_timeout, attempts, signature)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:  # the worker's threads may ask at once; build one client, not several
        found = _clients.get(key)
        if found is None:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            options: dict[str, Any] = {
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
                "retries": {"total_max_attempts": attempts, "mode": "standard"},
            }
            if signature is not None:
                options["signature_version"] = UNSIGNED if signature == "unsigned" else signature
            found = _clients[key] = boto3.client(service, config=Config(**options))
    return found


def reset() -> None:
    """Forget every client, so the next ones read the current environment (tests)."""
    with _lock:
        _clients.clear()
