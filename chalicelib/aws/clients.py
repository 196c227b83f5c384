"""AWS SDK clients: built on first use, once per container, with timeouts that fit who waits.

botocore is imported here on first use, not at module scope: a session and one client cost
~150 ms of CPU. Whether a function pays that during INIT (at a full vCPU, every cold start) or
on the first event that writes (at the memory size's share) is decided per function and memory
size in chalicelib/runtime/warmup.py: the API handler at its default size keeps it off /voice's
cold start, the worker and the schedules build theirs during INIT. Clients come from one
botocore session rather than boto3.client(): boto3 adds its resource layer (~15 ms) that
nothing here uses. Endpoint, region and credentials come from the environment as botocore
reads them (AWS_ENDPOINT_URL for the local stack, the execution role in Lambda).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple


class Patience(NamedTuple):
    """How long a caller can wait for one AWS call: per-attempt timeouts and attempts."""

    connect_timeout: float
    read_timeout: float
    attempts: int


# A webhook must answer well inside Twilio's 15 s: one call's worst case is 2 x (1 + 2) s plus
# botocore's backoff, and a webhook makes at most a few calls.
WEBHOOK = Patience(connect_timeout=1.0, read_timeout=2.0, attempts=2)
# The worker and the schedules have minutes (lambda_timeout 120-300 s): ride out throttling.
WORKER = Patience(connect_timeout=2.0, read_timeout=10.0, attempts=5)

_patience: contextvars.ContextVar[Patience] = contextvars.ContextVar("patience", default=WEBHOOK)
_clients: dict[tuple[str, Patience, str | None], Any] = {}
_session: Any = None
_lock = threading.Lock()


@contextlib.contextmanager
def patience(value: Patience) -> Iterator[None]:
    """Within this block (and threads started with its context), clients use value."""
    token = _patience.set(value)
    try:
        yield
    finally:
        _patience.reset(token)


def client(service: str, *, signature: str | None = None) -> Any:
    """This container's botocore client for service, at the current patience.

    signature is a botocore signature version, or "unsigned" for anonymous requests (public
    S3 buckets).
    """
    current = _patience.get()
    key = (service, current, signature)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:  # the worker's threads may ask at once; and botocore sessions are not thread-safe
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = _build(service, current, signature)
    return found


def _build(service: str, current: Patience, signature: str | None) -> Any:
    global _session
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    options: dict[str, Any] = {
        "connect_timeout": current.connect_timeout,
        "read_timeout": current.read_timeout,
        # standard mode: retry quotas and the throttling codes of every service.
        "retries": {"total_max_attempts": current.attempts, "mode": "standard"},
    }
    if signature is not None:
        options["signature_version"] = UNSIGNED if signature == "unsigned" else signature
    if _session is None:
        _session = botocore.session.get_session()
    return _session.create_client(service, config=Config(**options))


def failure(exc: Exception) -> str:
    """What an SDK call's failure was, for our own errors' text: AWS's error code for a
    refusal, else the exception's type (a timeout, an endpoint that cannot be reached).
    AWS's messages are left out; the code never holds a value."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def reset() -> None:
    """Forget every client and the session, so the next ones read the environment (tests)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
