"""The one source of "now", so tests can move time instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], float] = time.time


def now() -> float:
    """Seconds since the epoch."""
    return _now()


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime."""
    return datetime.fromtimestamp(_now(), UTC)


def set_clock(source: Callable[[], float] | None) -> None:
    """Replace the time source (tests); None restores the real clock."""
    global _now
    _now = source or time.time


def iso(seconds: float) -> str:
    """An epoch instant as ISO-8601 UTC with a Z, to the millisecond."""
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
