"""send_at, time zones, DST and quiet hours, on fixed instants (no sleeping, no real clock)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.api.validation import ValidationError
from chalicelib.messaging import timing

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-03-02T09:00:00Z", None, utc(2026, 3, 2, 9)),
        ("2026-03-02T09:00:00+01:00", None, utc(2026, 3, 2, 8)),
        ("2026-03-02T09:00:00", NY, utc(2026, 3, 2, 14)),
        # Spring forward: 02:30 does not exist in New York on 2026-03-08; it moves on by the gap.
        ("2026-03-08T02:30:00", NY, utc(2026, 3, 8, 7, 30)),
        # Fall back: 01:30 happens twice on 2026-11-01; the first (EDT) is taken.
        ("2026-11-01T01:30:00", NY, utc(2026, 11, 1, 5, 30)),
    ],
)
def test_parse_send_at(value, zone, expected):
    assert timing.parse_send_at(value, zone) == expected


def test_gap_time_reads_as_the_local_time_after_the_change():
    instant = timing.parse_send_at("2026-03-08T02:30:00", NY)
    assert instant.astimezone(NY).strftime("%H:%M %Z") == "03:30 EDT"


@pytest.mark.parametrize(
    ("value", "zone", "field"),
    [
        ("2026-03-02T09:00:00", None, "timezone"),
        ("tomorrow", None, "send_at"),
        (1234, None, "send_at"),
    ],
)
def test_parse_send_at_errors(value, zone, field):
    with pytest.raises(ValidationError) as error:
        timing.parse_send_at(value, zone)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("delta", "ok"),
    [
        (timedelta(seconds=-1), False),
        (timedelta(seconds=59), False),
        (timedelta(seconds=60), True),
        (timedelta(days=366), True),
        (timedelta(days=366, seconds=1), False),
    ],
)
def test_lead_bounds(delta, ok):
    if ok:
        timing.check_lead(NOW + delta, NOW)
    else:
        with pytest.raises(ValidationError) as error:
            timing.check_lead(NOW + delta, NOW)
        assert error.value.field == "send_at"


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "/UTC"])
def test_unknown_zones(name):
    with pytest.raises(ValidationError) as error:
        timing.zone(name)
    assert error.value.field == "timezone"


@pytest.mark.parametrize("value", ["9:00", "24:00", "12:60", "noon", 900])
def test_bad_hhmm(value):
    with pytest.raises(ValidationError):
        timing.parse_hhmm(value, "not_before")


def test_window_needs_a_timezone_and_distinct_bounds():
    with pytest.raises(ValidationError) as error:
        timing.window({"not_before": "09:00"}, None)
    assert error.value.field == "timezone"
    with pytest.raises(ValidationError):
        timing.window({"not_before": "09:00", "not_after": "09:00"}, NY)
    assert timing.window({}, NY) is None


def local(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=NY).astimezone(UTC)


@pytest.mark.parametrize(
    ("bounds", "at", "expected"),
    [
        # A day window [09:00, 20:00).
        (("09:00", "20:00"), local(2026, 3, 2, 12), local(2026, 3, 2, 12)),
        (("09:00", "20:00"), local(2026, 3, 2, 7), local(2026, 3, 2, 9)),
        (("09:00", "20:00"), local(2026, 3, 2, 20), local(2026, 3, 3, 9)),
        (("09:00", "20:00"), local(2026, 3, 2, 23, 59), local(2026, 3, 3, 9)),
        # Crossing midnight: [22:00, 06:00).
        (("22:00", "06:00"), local(2026, 3, 2, 23), local(2026, 3, 2, 23)),
        (("22:00", "06:00"), local(2026, 3, 2, 5), local(2026, 3, 2, 5)),
        (("22:00", "06:00"), local(2026, 3, 2, 6), local(2026, 3, 2, 22)),
        # A missing bound is the default quiet hours' (08:00 to 21:00): never midnight.
        ((None, "17:00"), local(2026, 3, 2, 18), local(2026, 3, 3, 8)),
        ((None, "17:00"), local(2026, 3, 3, 0, 30), local(2026, 3, 3, 8)),
        ((None, "17:00"), local(2026, 3, 3, 9), local(2026, 3, 3, 9)),
        (("10:00", None), local(2026, 3, 2, 7), local(2026, 3, 2, 10)),
        (("10:00", None), local(2026, 3, 2, 20, 59), local(2026, 3, 2, 20, 59)),
        (("10:00", None), local(2026, 3, 2, 23), local(2026, 3, 3, 10)),
        # The opening falls in the DST gap: 02:30 on 2026-03-08 is 03:30 EDT.
        (("02:30", "05:00"), local(2026, 3, 8, 1), utc(2026, 3, 8, 7, 30)),
    ],
)
def test_next_opening(bounds, at, expected):
    not_before, not_after = bounds
    window = timing.window({"not_before": not_before, "not_after": not_after}, NY)
    assert timing.next_opening(at, window) == expected


def test_window_bounds_are_hhmm_times():
    window = timing.window({"not_before": "09:30", "not_after": "17:45"}, NY)
    assert (window.not_before, window.not_after) == (time(9, 30), time(17, 45))


@pytest.mark.parametrize(
    ("bounds", "field"),
    [
        # One bound on the far side of the other's default would make a window that crosses
        # midnight, all night long: refused, naming the bound given.
        ({"not_after": "07:00"}, "not_after"),
        ({"not_after": "08:00"}, "not_after"),
        ({"not_before": "21:00"}, "not_before"),
        ({"not_before": "23:00"}, "not_before"),
    ],
)
def test_one_bound_must_leave_a_day_window(bounds, field):
    with pytest.raises(ValidationError) as error:
        timing.window(bounds, NY)
    assert error.value.field == field


def test_a_window_is_kept_on_the_record_and_read_back():
    window = timing.window({"not_after": "20:00"}, NY)
    stored = timing.stored(window)
    assert stored == {"timezone": "America/New_York", "not_before": "08:00", "not_after": "20:00"}
    assert timing.from_stored(stored) == window
    assert timing.from_stored(None) is None
