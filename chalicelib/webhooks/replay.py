"""A signed webhook with side effects acts once, however often it is sent or re-cut.

Twilio signs the URL followed by each POST name and value, sorted and joined with nothing
between them, and nothing in the signature says when. So a captured request can be sent again,
and re-cut: moving a boundary (between a name and its value, two fields, or the query and the
body) keeps the signature valid while changing what the fields say. Two guards:

- every signed request that acts is remembered by its signature (which stands for the whole
  signed string, URL and fields, however they are cut) for WINDOW: a second delivery acts not;
- the SID a route dedups its events by (MessageSid, CallSid, RecordingSid) must be a well-formed
  SID, so a re-cut that merged the next field into it, or took it away, acts on nothing. That
  holds beyond the window, where the route's own per-SID records take over.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from chalicelib.core import clock

if TYPE_CHECKING:
    from chalicelib.aws.storage import Table
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

# Twilio retries a webhook within its total timeout (at most 15 s, five retries at most), with
# the same URL, fields and so signature; a day covers that many times over, and what is replayed
# later meets the routes' per-SID records (kept for the retention or longer).
WINDOW = 24 * 3600
# Twilio's SIDs: two letters naming the resource, then 32 hex digits.
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")


def is_sid(value: str | None, *prefixes: str) -> bool:
    """Whether value is a well-formed Twilio SID with one of the prefixes (SM, CA, RE, …)."""
    return bool(value) and _SID.fullmatch(value or "") is not None and value[:2] in prefixes


def sid(request: VerifiedRequest, names: tuple[str, ...], prefixes: tuple[str, ...]) -> str | None:
    """The first of Twilio's fields names that holds a well-formed SID, else None."""
    for name in names:
        value = request.twilio_param(name)
        if is_sid(value, *prefixes):
            return value
    return None


def marker_key(request: VerifiedRequest) -> str:
    """The table key remembering a signed request: its route and its signature.

    Not the query: a re-cut moves characters between the query and the body.
    """
    digest = hashlib.sha256(f"{_route(request)}\n{request.signature}".encode()).hexdigest()
    return f"replay#{digest[:40]}"


@contextmanager
def once(table: Table, request: VerifiedRequest) -> Iterator[bool]:
    """Yield True on a signed request's first delivery, False on any later one.

    The marker is claimed with one conditional write before the side effects, and deleted if
    they raise: the webhook then answers 500 and Twilio's retry, the same signed request, acts.

    Raises:
        StorageError: the marker could not be written (nothing was done).
    """
    from chalicelib.aws.storage import ConditionFailedError, StorageError

    key = marker_key(request)
    now = clock.now()
    writer = os.urandom(8).hex()
    try:
        table.put(
            {"pk": key, "at": now, "expires_at": int(now + WINDOW), "writer": writer},
            # DynamoDB deletes expired items up to days late: past its expiry a marker is gone.
            condition="attribute_not_exists(pk) OR expires_at < :now",
            values={":now": int(now)},
        )
    except ConditionFailedError as exc:
        # Unless it is our own marker, applied with its answer lost and retried by the SDK.
        if (exc.current or {}).get("writer") != writer:
            logger.info("webhook replay ignored", extra={"route": _route(request)})
            yield False
            return
    try:
        yield True
    except BaseException:
        try:
            table.delete(key)
        except StorageError:
            logger.error("could not forget a failed webhook; Twilio's retry of it is ignored")
        raise


def _route(request: VerifiedRequest) -> str:
    return request.url.split("?", 1)[0][len(request.base_url) :]
