"""The spend arithmetic: Twilio's price strings as exact decimals, prefixes, days, the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.aws.parameters import Parameters
from chalicelib.guards import budget, spend


def test_twilios_negative_prices_are_charges_summed_exactly():
    prices = ["-0.00790"] * 3 + ["-0.01400", "-0.1"]
    total = sum((spend.charge(p) for p in prices), Decimal(0))
    assert total == Decimal("0.1377")
    # The binary float sum is not exact: what Decimal avoids.
    assert sum(-float(p) for p in prices) != 0.1377
    assert str(sum((spend.charge("-0.00790") for _ in range(10)), Decimal(0))) == "0.07900"


def test_a_positive_price_is_a_credit_and_zero_is_free():
    assert spend.charge("0.00790") == Decimal("-0.00790")
    assert spend.charge("0.00000") == 0


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", "-0.0.1"])
def test_a_price_that_is_not_a_number_is_refused(bad):
    with pytest.raises(ValueError):
        spend.charge(bad)


@pytest.mark.parametrize(
    ("number", "prefix"),
    [
        ("+14155550123", "+1415"),  # NANP: the area code
        ("+447700900123", "+44770"),  # two-digit country code
        ("+79161234567", "+7916"),
        ("+2348031234567", "+234803"),  # three-digit country code
        ("+882161234567", "+882161"),
        ("whatsapp:+14155550123", "+1415"),
        ("client:alice", "other"),
        ("sip:alice@example.com", "other"),
        ("+1", "other"),
    ],
)
def test_destination_prefix_is_the_country_code_and_three_digits(number, prefix):
    assert spend.destination_prefix(number) == prefix


def test_days_are_utc():
    assert spend.day_of(1764806399) == "2025-12-03"  # 23:59:59Z
    assert spend.day_of(1764806400) == "2025-12-04"


def test_totals_read_back_exactly_and_by_currency():
    item = {
        "pk": "spend#2025-12-03",
        "USD#count": 3,
        "USD#total": 0.0237,
        "USD#p#+1415#n": 2,
        "USD#p#+1415#t": 0.0158,
        "USD#p#+44770#n": 1,
        "USD#p#+44770#t": 0.0079,
        "EUR#count": 1,
        "EUR#total": 1,
        "budget_reached_at": 1764806400.5,
        "expires_at": 1799999999,
    }
    totals = spend.totals_of(item)
    assert set(totals) == {"USD", "EUR"}
    assert totals["USD"]["total"] == Decimal("0.0237") and totals["USD"]["count"] == 3
    assert totals["USD"]["prefixes"]["+1415"] == [2, Decimal("0.0158")]
    assert totals["EUR"]["total"] == 1


@pytest.mark.parametrize(
    ("raw", "cap"),
    [(None, None), ("", None), ("5", Decimal(5)), ("12.50", Decimal("12.50")), ("0", 0)],
)
def test_the_budget_parameter(raw, cap):
    values = {} if raw is None else {budget.PARAMETER: raw}
    assert budget.limit(Parameters(values)) == cap


@pytest.mark.parametrize("raw", ["$5", "five", "-1", "NaN"])
def test_a_budget_that_is_not_dollars_holds_everything(raw):
    assert budget.limit(Parameters({budget.PARAMETER: raw})) == 0


def test_retry_after_runs_to_midnight_utc():
    midnight = 1764806400
    assert budget.seconds_to_midnight(midnight - 3600.5) == 3601
    assert budget.seconds_to_midnight(midnight - 0.2) == 1
    assert budget.seconds_to_midnight(midnight) == 86400
