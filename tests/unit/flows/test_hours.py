"""Opening hours: days, times, the business's own zone across a DST change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.flows.hours import Hours


class Values(dict):
    def optional(self, name):
        return self.get(name)


NEW_YORK = Hours.from_parameters(
    Values(
        {"hours/open": "09:00-17:00", "hours/days": "mon-fri", "hours/timezone": "America/New_York"}
    )
)


@pytest.mark.parametrize(
    ("instant", "open_"),
    [
        (datetime(2026, 12, 3, 14, 0, tzinfo=UTC), True),  # Thu 09:00 EST: opens
        (datetime(2026, 12, 3, 13, 59, tzinfo=UTC), False),  # 08:59
        (datetime(2026, 12, 3, 22, 0, tzinfo=UTC), False),  # 17:00: closed
        (datetime(2026, 12, 5, 15, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True),  # Mon after DST began: 09:30 EDT
        (datetime(2026, 3, 6, 13, 30, tzinfo=UTC), False),  # Fri before: 08:30 EST
    ],
)
def test_open_in_the_business_zone(instant, open_):
    assert NEW_YORK.open_at(instant) is open_


def test_days_lists_and_wrapping_ranges():
    hours = Hours.from_parameters(Values({"hours/days": "fri-mon, wed"}))
    assert hours.days == {4, 5, 6, 0, 2}


def test_unreadable_values_fall_back_to_weekdays_nine_to_five_utc():
    hours = Hours.from_parameters(
        Values(
            {
                "hours/open": "nine to five",
                "hours/days": "someday",
                "hours/timezone": "Mars/Olympus",
            }
        )
    )
    assert (hours.days, str(hours.opens), str(hours.closes)) == (
        frozenset(range(5)),
        "09:00:00",
        "17:00:00",
    )
    assert hours.open_at(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))  # the unknown zone reads as UTC
