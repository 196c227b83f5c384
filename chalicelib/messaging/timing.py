"""When a message may go out: send_at parsing, time zones, DST and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

from chalicelib.api.validation import ValidationError

MIN_LEAD = timedelta(seconds=60)
MAX_LEAD = timedelta(days=366)
# A window given by one bound takes the other from the usual quiet hours (8 a.m. to 9 p.m.
# local, as the TCPA's): "not_after 21:00" alone opens at 08:00, never at midnight.
DAY_START = time(8)
DAY_END = time(21)


class Window(NamedTuple):
    """Allowed local hours [not_before, not_after) in a zone (crossing midnight when
    not_after <= not_before)."""

    zone: object  # zoneinfo.ZoneInfo
    not_before: time
    not_after: time


def zone(name: str | None, field: str = "timezone") -> object | None:
    """The IANA zone called name, or None when name is None.

    Raises:
        ValidationError: not a known IANA zone.
    """
    if name is None:
        return None
    # zoneinfo only when a time zone is named: most sends name none.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ValidationError("timezone must be an IANA time zone such as Europe/Paris", field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r}", field) from None


def local_to_utc(local: datetime, tz: object) -> datetime:
    """A naive local time in tz as a UTC instant.

    Times skipped by a DST change move forward by the gap; repeated times take the first
    occurrence (fold=0 does both with zoneinfo: the offset before the change applies).
    """
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)  # type: ignore[arg-type]


def parse_send_at(
    value: object, tz: object | None, field: str = "send_at", *, zones: bool = True
) -> datetime:
    """An ISO-8601 instant with an offset, or a local time with a time zone, as UTC.

    Raises:
        ValidationError: unparsable, out of the calendar's range once in UTC, or a local time
            without timezone (naming field, or timezone where the route takes one: zones).
    """
    message = f"{field} must be an ISO-8601 date and time"
    if not isinstance(value, str):
        raise ValidationError(message, field)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise ValidationError(message, field) from None
    if parsed.tzinfo is None and tz is None:
        if not zones:
            raise ValidationError(f"{field} has no UTC offset: add one", field)
        raise ValidationError(f"{field} has no UTC offset: add one, or give a timezone", "timezone")
    try:
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        return local_to_utc(parsed, tz)
    except OverflowError:
        # 0001-01-01T00:00+01:00 is in year 0 in UTC, 9999-12-31T23:59-01:00 in year 10000.
        raise ValidationError(f"{field} is out of range", field) from None


def check_lead(send_at: datetime, now: datetime) -> None:
    """Refuse times in the past, under 60 s ahead or over 366 days ahead.

    Raises:
        ValidationError: naming send_at.
    """
    if send_at <= now:
        raise ValidationError("send_at is in the past", "send_at")
    if send_at - now < MIN_LEAD:
        raise ValidationError("send_at must be at least 60 seconds ahead", "send_at")
    if send_at - now > MAX_LEAD:
        raise ValidationError("send_at must be at most 366 days ahead", "send_at")


def parse_hhmm(value: object, field: str) -> time | None:
    """An HH:MM local time, or None when absent.

    Raises:
        ValidationError: not HH:MM between 00:00 and 23:59.
    """
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        try:
            return time(int(value[:2]), int(value[3:]))
        except ValueError:
            pass
    raise ValidationError(f"{field} must be HH:MM, 00:00 to 23:59", field)


def window(payload: dict, tz: object | None) -> Window | None:
    """The quiet-hours window from not_before/not_after, or None; a missing bound is
    DAY_START's or DAY_END's.

    Raises:
        ValidationError: bad HH:MM, no timezone, an empty window, or one bound on the far side
            of the other's default (a window all night long).
    """
    not_before = parse_hhmm(payload.get("not_before"), "not_before")
    not_after = parse_hhmm(payload.get("not_after"), "not_after")
    if not_before is None and not_after is None:
        return None
    if tz is None:
        raise ValidationError("timezone is required with not_before/not_after", "timezone")
    if not_before is None:
        if not_after is not None and not_after <= DAY_START:
            raise ValidationError(
                "not_after alone must be after 08:00; give not_before too", "not_after"
            )
        not_before = DAY_START
    if not_after is None:
        if not_before >= DAY_END:
            raise ValidationError(
                "not_before alone must be before 21:00; give not_after too", "not_before"
            )
        not_after = DAY_END
    if not_before == not_after:
        raise ValidationError("not_before and not_after must differ", "not_after")
    return Window(tz, not_before, not_after)


def stored(w: Window) -> dict[str, str]:
    """A window as kept on a message record (the worker checks it at every send)."""
    return {
        "timezone": w.zone.key,  # type: ignore[attr-defined]
        "not_before": w.not_before.strftime("%H:%M"),
        "not_after": w.not_after.strftime("%H:%M"),
    }


def from_stored(value: dict[str, str] | None) -> Window | None:
    """The window a record keeps, or None.

    Raises:
        ValidationError: a record that was never written by stored().
    """
    if not value:
        return None
    return window(value, zone(value["timezone"]))


def _allowed(local: time, w: Window) -> bool:
    if w.not_after > w.not_before:
        return w.not_before <= local < w.not_after
    return local >= w.not_before or local < w.not_after  # the window crosses midnight


def next_opening(instant: datetime, w: Window) -> datetime:
    """instant if it falls in the window, else the window's next opening (UTC)."""
    local = instant.astimezone(w.zone)  # type: ignore[arg-type]
    if _allowed(local.time(), w):
        return instant
    start = w.not_before
    day = local.date()
    for _ in range(3):
        opening = local_to_utc(datetime.combine(day, start), w.zone)
        if opening > instant:
            return opening
        day += timedelta(days=1)
    raise AssertionError("a window always opens within two days")
