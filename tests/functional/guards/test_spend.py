"""Spend and the daily budget against the local Twilio (prices filled in late) and moto."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from chalicelib.aws import jobs as job_queue
from chalicelib.aws import parameters
from chalicelib.core import clock
from chalicelib.guards import budget, spend
from chalicelib.messaging import deps, messages
from devkit import demo
from tests.functional.conftest import run_schedule

TO = "+15105551212"
DAY = 86400


@pytest.fixture
def frozen(frozen):
    """Noon UTC of the real day: these tests count by UTC day, and a run minutes before
    midnight would otherwise see its spend land in tomorrow's total (a CI flake at 23:5x)."""
    frozen.now = frozen.now // DAY * DAY + DAY / 2
    return frozen


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def delivered(caller, twilio, sid, **extra):
    """Twilio delivers the message (its price comes later) and calls back."""
    assert wait_for(
        lambda: any(m["sid"] == sid and m["status"] == "delivered" for m in twilio.messages)
    )
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": demo.ACCOUNT_SID}
    return caller.webhook("/status/messages", {**params, "To": TO, **extra})


def fetches(twilio, sid):
    return [r for r in twilio.requests if r.method == "GET" and sid in r.path]


def day_spend(caller, day=None):
    response = caller.api("/spend" + (f"?day={day}" if day else ""), method="GET")
    assert response["statusCode"] == 200, response["json"]
    return response["json"]


def set_budget(ssm, value):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/{budget.PARAMETER}", Value=value, Type="String", Overwrite=True
    )
    parameters.reset()  # the app would see it within its cache's TTL


def test_a_price_filled_in_late_is_fetched_again_and_counted_once(caller, twilio, jobs, frozen):
    twilio.complete_after, twilio.price_after = 0.0, 100.0
    sent = caller.api("/messages", {"to": TO, "body": "x" * 200})["json"]  # two segments
    call = caller.api("/calls", {"to": "+14155550123", "say": "hi"})["json"]
    assert delivered(caller, twilio, sent["sid"])["statusCode"] == 200
    # Another callback about the same delivery (Twilio's "read", a retry re-signed): no recount.
    delivered(caller, twilio, sent["sid"], RawDlrDoneDate="2512031200")
    delivered(caller, twilio, sent["sid"], MessageStatus="read")
    assert wait_for(lambda: twilio.calls[0]["status"] == "completed")
    params = {"CallSid": call["sid"], "CallStatus": "completed", "AccountSid": demo.ACCOUNT_SID}
    caller.webhook("/status/calls", params)
    frozen.advance(messages.FIRST_PRICE_FETCH)
    jobs.drain()  # Twilio has no price yet: the jobs come back later
    assert len(fetches(twilio, sent["sid"])) == 1
    assert day_spend(caller)["count"] == 0
    frozen.advance(30)
    jobs.drain()
    frozen.advance(60)
    jobs.drain()
    assert len(fetches(twilio, sent["sid"])) == 3
    totals = day_spend(caller)
    assert (totals["currency"], totals["total"], totals["count"]) == ("USD", "0.02980", 2)
    assert totals["top_destinations"] == [
        {"prefix": "+1510", "count": 1, "total": "0.01580"},
        {"prefix": "+1415", "count": 1, "total": "0.01400"},
    ]
    assert totals["daily_budget_usd"] is None and totals["budget_reached"] is False
    # A replayed job, and a second count of the same record (a transaction whose retry
    # comes after its first was applied), count nothing.
    payload = {"pk": f"msg#{sent['id']}", "sid": sent["sid"], "final_at": frozen.now}
    job_queue.defer("price", payload)
    jobs.drain()
    table = deps.table()
    record = table.get(f"msg#{sent['id']}")
    assert record["priced"] == "-0.01580"
    assert not spend.count(table, record, "-0.01580", Decimal("0.01580"), "USD", totals["day"])
    assert day_spend(caller, totals["day"])["total"] == "0.02980"
    assert len(fetches(twilio, sent["sid"])) == 3
    assert day_spend(caller, "2001-01-01")["count"] == 0


def test_a_price_that_never_comes_is_given_up_after_a_day(caller, twilio, jobs, frozen):
    twilio.complete_after, twilio.price_after = 0.0, 2 * 86400.0
    sent = caller.api("/messages", {"to": TO, "body": "x"})["json"]
    delivered(caller, twilio, sent["sid"])
    for _ in range(110):  # past the day, at SQS's longest delay
        frozen.advance(job_queue.MAX_DELAY)
        jobs.drain()
    # Fetched about once every SQS maximum delay for a day, then no more.
    assert 90 <= len(fetches(twilio, sent["sid"])) <= 100
    assert day_spend(caller)["count"] == 0


def test_bad_days_are_400_naming_day(caller):
    for day in ("2025-13-01", "yesterday", "2025-1-1", ""):
        response = caller.api(f"/spend?day={day}", method="GET")
        assert response["statusCode"] == 400, day
        assert response["json"]["error"]["field"] == "day"


def test_budget_reached_holds_queued_refuses_immediate_and_a_new_day_sends_once(
    caller, ssm, twilio, jobs, frozen, log_lines
):
    set_budget(ssm, "0.02")
    twilio.complete_after, twilio.price_after = 0.0, 0.0
    first = caller.api("/messages", {"to": TO, "body": "x" * 400})["json"]  # three segments
    later = clock.iso(frozen.now + 120)
    scheduled = caller.api("/messages", {"to": TO, "body": "later", "send_at": later})["json"]
    delivered(caller, twilio, first["sid"])
    frozen.advance(messages.FIRST_PRICE_FETCH)
    jobs.drain()  # priced -0.02370: the budget is reached
    refused = caller.api("/messages", {"to": TO, "body": "now"})
    assert refused["statusCode"] == 429 and refused["json"]["error"]["reason"] == "budget"
    retry_after = int(refused["headers"]["Retry-After"])
    assert retry_after == budget.seconds_to_midnight(frozen.now)
    call = caller.api("/calls", {"to": TO, "say": "hi"})
    assert call["statusCode"] == 429 and call["json"]["error"]["reason"] == "budget"
    broadcast = caller.api("/broadcasts", {"to": ["+14155550000", "+14155550001"], "body": "b"})
    frozen.advance(120)
    run_schedule("dispatch_due")
    jobs.drain()
    held = caller.api(f"/messages/{scheduled['id']}", method="GET")["json"]
    assert held["status"] == "held"
    counts = caller.api(f"/broadcasts/{broadcast['json']['id']}", method="GET")["json"]
    assert counts["counts"] == {"held": 2}
    assert len(twilio.messages) == 1 and len(twilio.calls) == 0
    totals = day_spend(caller)
    assert (totals["total"], totals["daily_budget_usd"], totals["budget_reached"]) == (
        "0.02370",
        "0.02",
        True,
    )
    run_schedule("dispatch_due")  # still over budget today: nothing released
    jobs.drain()
    assert len(twilio.messages) == 1
    frozen.advance(retry_after)  # midnight UTC: a new day's budget
    run_schedule("dispatch_due")
    run_schedule("dispatch_due")  # an overlapping run releases nothing twice
    jobs.drain()
    jobs.drain()
    assert sorted(m["to"] for m in twilio.messages) == sorted(
        [TO, TO, "+14155550000", "+14155550001"]
    )
    record = caller.api(f"/messages/{scheduled['id']}", method="GET")["json"]
    assert [h["status"] for h in record["history"]] == [
        "scheduled",
        "queued",
        "held",
        "queued",
        "sending",
        "sent",
    ]
    metrics = [line for line in log_lines() if "_aws" in line]
    assert len(metrics) == 1
    (metric,) = metrics
    assert metric["level"] == "ERROR" and metric[budget.METRIC] == 1
    directive = metric["_aws"]["CloudWatchMetrics"][0]
    assert directive["Metrics"] == [{"Name": budget.METRIC, "Unit": "Count"}]


def test_a_raised_budget_releases_held_messages_and_a_held_one_can_be_canceled(
    caller, ssm, twilio, jobs, frozen, log_lines
):
    set_budget(ssm, "0")
    kept = caller.api("/messages", {"to": TO, "body": "a", "send_at": clock.iso(frozen.now + 61)})
    dropped = caller.api(
        "/messages", {"to": TO, "body": "b", "send_at": clock.iso(frozen.now + 61)}
    )
    frozen.advance(61)
    run_schedule("dispatch_due")
    jobs.drain()
    assert caller.api(f"/messages/{kept['json']['id']}", method="GET")["json"]["status"] == "held"
    canceled = caller.api(f"/messages/{dropped['json']['id']}", method="DELETE")
    assert canceled["statusCode"] == 200 and canceled["json"]["status"] == "canceled"
    assert sum("_aws" in line for line in log_lines()) == 1
    set_budget(ssm, "5")
    run_schedule("dispatch_due")
    jobs.drain()
    assert caller.api(f"/messages/{kept['json']['id']}", method="GET")["json"]["status"] == "sent"
    assert [m["body"] for m in twilio.messages] == ["a"]


def test_no_budget_never_holds(caller, twilio, jobs, frozen):
    payload = {"to": TO, "body": "a", "send_at": clock.iso(frozen.now + 61)}
    sent = caller.api("/messages", payload)["json"]
    frozen.advance(61)
    run_schedule("dispatch_due")
    jobs.drain()
    assert caller.api(f"/messages/{sent['id']}", method="GET")["json"]["status"] == "sent"
    assert caller.api("/messages", {"to": TO, "body": "now"})["statusCode"] == 201
