"""Velocity limits' pure parts: windows, Retry-After, prefixes and the parameters' values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.aws.parameters import Parameters
from chalicelib.guards import velocity


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("now", "ends"),
    [
        ("2025-03-04T10:00:00", "2025-03-04T11:00:00"),
        ("2025-03-04T10:59:59.999", "2025-03-04T11:00:00"),
        ("2025-03-04T23:30:00", "2025-03-05T00:00:00"),
    ],
)
def test_the_hour_window_is_the_utc_hour(now, ends):
    index, end = velocity.hour_window(at(now))
    assert end == at(ends)
    assert velocity.hour_window(end - 0.001)[0] == index
    assert velocity.hour_window(end)[0] == index + 1


@pytest.mark.parametrize(
    ("now", "ends"),
    [
        ("2025-03-04T00:00:00", "2025-03-05T00:00:00"),
        ("2025-03-04T23:59:59.5", "2025-03-05T00:00:00"),
        ("2024-12-31T12:00:00", "2025-01-01T00:00:00"),
    ],
)
def test_the_day_window_ends_at_midnight_utc(now, ends):
    index, end = velocity.day_window(at(now))
    assert end == at(ends)
    assert velocity.day_window(end)[0] == index + 1


@pytest.mark.parametrize(
    ("until", "now", "seconds"),
    [(3600.0, 600.0, 3000), (3600.0, 3599.2, 1), (3600.0, 3600.0, 1), (3600.0, 599.5, 3001)],
)
def test_retry_after_is_whole_seconds_never_zero(until, now, seconds):
    assert velocity.retry_after(until, now) == seconds


def test_the_prefix_drops_the_subscriber_digits():
    assert velocity.prefix("+15105551212") == "+1510555"
    assert velocity.prefix("+447700900123") == "+44770090"


@pytest.mark.parametrize(
    ("value", "limit"),
    [(None, 10), ("", 10), ("25", 25), (" 3 ", 3), ("off", None), ("OFF", None)],
)
def test_per_destination_setting(value, limit):
    values = Parameters({} if value is None else {velocity.PER_DESTINATION: value})
    assert velocity.setting(values, velocity.PER_DESTINATION) == limit


@pytest.mark.parametrize("value", ["0", "-1", "ten", "2.5"])
def test_an_unusable_value_keeps_the_default_not_off(value):
    assert (
        velocity.setting(Parameters({velocity.PER_DESTINATION: value}), velocity.PER_DESTINATION)
        == 10
    )
    assert velocity.setting(Parameters({velocity.PER_DAY: value}), velocity.PER_DAY) is None


def test_send_limits_by_default_and_when_set():
    now = at("2025-03-04T10:15:00")
    (only,) = velocity.send_limits(Parameters({}), "+15105551212", now)
    assert only.parameter == velocity.PER_DESTINATION
    assert only.key == f"velocity#to#+15105551212#{int(now // 3600)}"
    assert (only.limit, only.ends) == (10, at("2025-03-04T11:00:00"))
    values = Parameters({velocity.PER_PREFIX: "50", velocity.PER_DAY: "500"})
    limits = {lim.parameter: lim for lim in velocity.send_limits(values, "+15105551212", now)}
    assert set(limits) == {velocity.PER_DESTINATION, velocity.PER_PREFIX, velocity.PER_DAY}
    assert limits[velocity.PER_PREFIX].key.startswith("velocity#prefix#+1510555#")
    assert limits[velocity.PER_DAY].ends == at("2025-03-05T00:00:00")
    # Numbers the owner chose (forwards, notifications) count in the day's total only.
    owner = velocity.send_limits(values, "+15105551212", now, owner_chosen=True)
    assert [lim.parameter for lim in owner] == [velocity.PER_DAY]
