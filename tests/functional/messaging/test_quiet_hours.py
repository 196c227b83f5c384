"""Quiet hours hold at every send, not only when a message is created: the window is kept on the
record and the worker checks it right before calling Twilio. Time moves on the app's clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from chalicelib.core import clock
from chalicelib.messaging import deps, messages
from tests.functional.conftest import run_schedule

TO = "+15105551212"
NY = ZoneInfo("America/New_York")


def at(*args):
    """Epoch seconds of a New York wall-clock time."""
    return datetime(*args, tzinfo=NY).timestamp()


def record(message_id):
    return deps.table().get(messages.key(message_id))


def test_a_retry_after_not_after_waits_for_the_next_opening(caller, twilio, jobs, frozen):
    frozen.now = at(2026, 5, 28, 20, 57)
    payload = {
        "to": TO,
        "body": "your order shipped",
        "send_at": "2026-05-28T20:59:00",
        "timezone": "America/New_York",
        "not_before": "09:00",
        "not_after": "21:00",
    }
    message_id = caller.api("/messages", payload)["json"]["id"]
    frozen.advance(at(2026, 5, 28, 20, 59) - frozen.now)
    run_schedule("dispatch_due")
    twilio.script_faults("429")  # Twilio is busy: the worker retries after a backoff
    assert jobs.poll_once() == (1, 0)  # the retry is a new job at its slot
    assert record(message_id)["status"] == "queued"
    frozen.advance(at(2026, 5, 28, 21, 40) - frozen.now)  # the retry comes after the window closed
    jobs.drain(replay_failures=True)
    assert twilio.messages == []
    waiting = record(message_id)
    assert waiting["status"] == "scheduled"
    assert waiting["send_at"] == at(2026, 5, 29, 9, 0)
    assert waiting["attempts"] == 1  # the deferral counted no attempt
    assert [h["status"] for h in waiting["history"]][-1] != "sending"
    frozen.advance(
        at(2026, 5, 29, 8, 58) - frozen.now
    )  # the dispatcher leaves it until its opening
    run_schedule("dispatch_due")
    assert jobs.drain() == 0
    frozen.advance(at(2026, 5, 29, 9, 0, 1) - frozen.now)
    run_schedule("dispatch_due")
    jobs.drain()
    sent = record(message_id)
    assert (sent["status"], sent["attempts"]) == ("sent", 2)
    assert len(twilio.messages) == 1


def test_a_window_with_only_not_after_reopens_at_the_days_start(caller, twilio, frozen):
    frozen.advance(at(2026, 5, 28, 21, 40) - frozen.now)
    payload = {"to": TO, "body": "x", "timezone": "America/New_York", "not_after": "21:00"}
    response = caller.api("/messages", payload)
    assert response["statusCode"] == 202
    assert response["json"]["send_at"] == clock.iso(at(2026, 5, 29, 8, 0))
    assert twilio.messages == []


def test_one_bound_that_leaves_no_day_window_is_400(caller, twilio):
    payload = {"to": TO, "body": "x", "timezone": "America/New_York", "not_after": "06:00"}
    response = caller.api("/messages", payload)
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == "not_after"
    assert twilio.messages == []
