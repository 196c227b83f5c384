"""Velocity limits through real API events, the real queue worker and /sms (docs/guards.md)."""

from __future__ import annotations

import pytest

from chalicelib.aws import parameters
from chalicelib.core import clock
from chalicelib.messaging import deps
from devkit import demo
from tests.functional.conftest import run_schedule

TO = "+15105551212"
HOUR = 3600


def configure(ssm, **values):
    for name, value in values.items():
        ssm.put_parameter(
            Name=f"{demo.SSM_PATH}/{name}", Value=str(value), Type="String", Overwrite=True
        )
    parameters.reset()


def send(caller, to=TO, headers=None, **fields):
    payload = {"to": to, "body": "Your table is ready", **fields}
    return caller.api("/messages", payload, headers=headers)


def at_minute(frozen, minute):
    """Move the clock forwards to the given minute of the next UTC hour."""
    frozen.advance((frozen.now // HOUR + 1) * HOUR + minute * 60 - frozen.now)


def counter(key):
    return (deps.table().get(key) or {}).get("n", 0)


def message(caller, message_id):
    return caller.api(f"/messages/{message_id}", method="GET")["json"]


def inbound(sid, sender, body):
    return {"MessageSid": sid, "From": sender, "To": demo.NUMBER, "Body": body}


def test_the_eleventh_message_or_call_to_one_number_in_an_hour_is_429(caller, twilio, frozen):
    at_minute(frozen, 10)
    for _ in range(8):
        assert send(caller)["statusCode"] == 201
    assert caller.api("/calls", {"to": TO, "say": "hello"})["statusCode"] == 201
    assert send(caller)["statusCode"] == 201  # the tenth
    for refused in (send(caller), caller.api("/calls", {"to": TO, "say": "hello"})):
        assert refused["statusCode"] == 429
        assert refused["headers"]["Retry-After"] == str(50 * 60)  # until the hour ends
        error = refused["json"]["error"]
        assert error["reason"] == "rate_limited"
        assert "outbound/max_per_destination_per_hour (10)" in error["message"]
    assert len(twilio.messages) == 9 and len(twilio.calls) == 1
    assert send(caller, to="+15105551213")["statusCode"] == 201  # another number: its own count
    frozen.advance(50 * 60)
    assert send(caller)["statusCode"] == 201  # a new hour
    assert len(twilio.messages) == 11


def test_a_retried_request_counts_once(caller, twilio, frozen):
    at_minute(frozen, 0)
    key = {"Idempotency-Key": "velocity-once"}
    first = send(caller, headers=key)
    assert send(caller, headers=key)["json"] == first["json"]  # replayed, not counted
    assert counter(f"velocity#to#{TO}#{int(frozen.now // HOUR)}") == 1
    assert len(twilio.messages) == 1


def test_prefix_and_day_limits_when_set_and_not_by_default(caller, ssm, twilio, frozen):
    at_minute(frozen, 0)
    # Unset by default: a business's own sends reach many numbers of one exchange.
    for n in range(12):
        assert send(caller, to=f"+1510555{n:04d}")["statusCode"] == 201
    # Counted only while set: from here on.
    configure(ssm, **{"outbound/max_per_prefix_per_hour": 3, "outbound/max_per_day": 5})
    for n in range(100, 103):
        assert send(caller, to=f"+1510555{n:04d}")["statusCode"] == 201
    refused = send(caller, to="+15105550103")
    assert refused["statusCode"] == 429
    assert "outbound/max_per_prefix_per_hour (3)" in refused["json"]["error"]["message"]
    assert refused["headers"]["Retry-After"] == str(HOUR)
    assert send(caller, to="+15105560000")["statusCode"] == 201  # another exchange
    assert send(caller, to="+15105570000")["statusCode"] == 201  # the day's fifth
    over_day = send(caller, to="+15105580000")
    assert over_day["statusCode"] == 429
    assert "outbound/max_per_day (5)" in over_day["json"]["error"]["message"]
    midnight = (frozen.now // 86400 + 1) * 86400
    assert over_day["headers"]["Retry-After"] == str(int(midnight - frozen.now))
    # A refusal by one counter counts in none (one transaction).
    hour = int(frozen.now // HOUR)
    assert counter(f"velocity#prefix#+1510558#{hour}") == 0
    assert counter("velocity#to#+15105580000#" + str(hour)) == 0
    assert len(twilio.messages) == 17


def test_a_broadcast_over_the_limit_waits_for_the_window_and_then_goes_out(
    caller, ssm, twilio, jobs, frozen
):
    configure(ssm, **{"outbound/max_per_prefix_per_hour": 2})
    at_minute(frozen, 58)
    recipients = [f"+1510555{n:04d}" for n in range(5)]
    created = caller.api("/broadcasts", {"to": recipients, "body": "Sale today"})
    assert created["statusCode"] == 202
    run_schedule("dispatch_due")
    jobs.drain()
    assert len(twilio.messages) == 2
    listing = caller.api(f"/broadcasts/{created['json']['id']}", method="GET")["json"]
    assert listing["counts"] == {"sent": 2, "scheduled": 3}  # waiting, not failed
    for hour in (1, 2):
        frozen.advance(HOUR if hour == 2 else 2 * 60)
        run_schedule("dispatch_due")
        jobs.drain()
        assert len(twilio.messages) == min(5, 2 + 2 * hour)
    assert sorted(m["to"] for m in twilio.messages) == recipients
    records = caller.api(f"/broadcasts/{created['json']['id']}", method="GET")["json"]
    assert records["counts"] == {"sent": 5}


def test_scheduled_messages_count_when_sent_and_wait_when_over(caller, twilio, jobs, frozen):
    at_minute(frozen, 0)
    early = send(caller, send_at=clock.iso(frozen.now + 60))["json"]
    frozen.advance(60)
    run_schedule("dispatch_due")
    jobs.drain()
    assert message(caller, early["id"])["status"] == "sent"
    for _ in range(9):
        assert send(caller)["statusCode"] == 201
    assert send(caller)["statusCode"] == 429  # the scheduled one counted
    late = send(caller, send_at=clock.iso(frozen.now + 120))["json"]
    frozen.advance(120)
    run_schedule("dispatch_due")
    jobs.drain()
    held = message(caller, late["id"])
    assert held["status"] == "scheduled"
    assert held["send_at"] == clock.iso((frozen.now // HOUR + 1) * HOUR)
    frozen.advance((frozen.now // HOUR + 1) * HOUR - frozen.now)
    run_schedule("dispatch_due")
    jobs.drain()
    sent = message(caller, late["id"])
    assert sent["status"] == "sent"
    assert [h["status"] for h in sent["history"]].count("sending") == 1  # no attempt counted
    assert len(twilio.messages) == 11


@pytest.mark.parametrize("fault", ["500", "throttle"])
def test_a_count_that_fails_in_the_api_sends_nothing_and_the_retry_sends_once(
    caller, twilio, aws_faults, fault
):
    aws_faults.script("dynamodb:UpdateItem", [fault, fault], match="velocity#to#")
    key = {"Idempotency-Key": f"velocity-{fault}"}
    assert send(caller, headers=key)["statusCode"] == 503
    assert twilio.messages == []
    again = send(caller, headers=key)
    assert again["statusCode"] == 201
    assert len(twilio.messages) == 1


def test_a_count_whose_answer_was_lost_is_ours_even_at_the_limit(caller, twilio, aws_faults):
    for _ in range(9):
        assert send(caller)["statusCode"] == 201
    # Applied, its answer lost: the SDK's retry meets n = 10 and its own mark.
    aws_faults.script("dynamodb:UpdateItem", ["lost"], match="velocity#to#")
    assert send(caller)["statusCode"] == 201
    assert send(caller)["statusCode"] == 429
    assert len(twilio.messages) == 10


@pytest.mark.parametrize("faults", [["500"] * 5, ["lost"]])
def test_a_count_that_fails_in_the_worker_neither_loses_nor_duplicates(
    caller, ssm, twilio, jobs, aws_faults, frozen, faults
):
    # Two counters: the worker's count is one transaction.
    configure(ssm, **{"outbound/max_per_day": 100})
    at_minute(frozen, 0)
    scheduled = send(caller, send_at=clock.iso(frozen.now + 60))["json"]
    frozen.advance(60)
    run_schedule("dispatch_due")
    aws_faults.script("dynamodb:TransactWriteItems", faults, match="velocity#")
    jobs.drain()
    for _ in range(3):  # a failed count is retried after a backoff
        frozen.advance(600)
        run_schedule("dispatch_due")
        run_schedule("reconcile_sending")
        jobs.drain()
    assert message(caller, scheduled["id"])["status"] == "sent"
    assert len(twilio.messages) == 1
    day = int(frozen.now // 86400)
    assert counter(f"velocity#day#{day}") == 1  # a lost answer's retry met its own count


def test_twilio_retries_do_not_count_again(caller, twilio, jobs, frozen):
    at_minute(frozen, 0)
    scheduled = send(caller, send_at=clock.iso(frozen.now + 60))["json"]
    frozen.advance(60)
    run_schedule("dispatch_due")
    twilio.set_faults(rate=1.0, statuses=(429,))
    jobs.drain()
    twilio.set_faults(rate=0.0)
    for _ in range(3):
        frozen.advance(300)
        run_schedule("dispatch_due")
        jobs.drain()
    assert message(caller, scheduled["id"])["status"] == "sent"
    assert counter(f"velocity#to#{TO}#{int(frozen.now // HOUR)}") == 1


def test_replies_and_forwards_are_capped_per_sender_per_day(caller, ssm, twilio, jobs):
    configure(
        ssm,
        **{
            "sms/auto_reply": "Thanks",
            "sms/forward_to": "+15105559999",
            "inbound/max_replies_per_sender_per_day": 2,
        },
    )
    bot = "+15105550042"
    answers = [
        caller.webhook("/sms", inbound(f"SM{n:032x}", bot, f"hi {n}"))["body"] for n in range(3)
    ]
    assert ["<Message>Thanks</Message>" in a for a in answers] == [True, True, False]
    # Twilio's retry of a counted message does nothing again (replay), the cap holds.
    other = caller.webhook("/sms", inbound("SM" + "e" * 32, "+15105550043", "hello"))
    assert "<Message>Thanks</Message>" in other["body"]
    jobs.drain()
    forwarded = sorted(m["body"] for m in twilio.messages)
    assert forwarded == [
        "From +15105550042: hi 0",
        "From +15105550042: hi 1",
        "From +15105550043: hello",
    ]
    listing = caller.api("/inbound", method="GET")["json"]["messages"]
    assert len(listing) == 4  # stored all the same


def test_no_reply_configured_counts_nothing(caller):
    caller.webhook("/sms", inbound("SM" + "d" * 32, "+15105550042", "hi"))
    day = int(clock.now() // 86400)
    assert counter(f"velocity#replies#+15105550042#{day}") == 0


def test_a_retry_that_takes_over_a_sent_request_answers_from_it_even_at_the_limit(
    caller, twilio, aws_faults, frozen
):
    at_minute(frozen, 0)
    for _ in range(8):
        assert send(caller)["statusCode"] == 201
    # The ninth is sent but its answer is not kept; the tenth fills the hour.
    aws_faults.script("dynamodb:UpdateItem", ["500", "500"], match="answer = :answer")
    key = {"Idempotency-Key": "velocity-takeover"}
    first = send(caller, headers=key)
    assert first["statusCode"] == 201
    assert send(caller)["statusCode"] == 201
    frozen.advance(121)  # the claim's lock has passed: the retry takes it over
    again = send(caller, headers=key)
    assert again["statusCode"] == 201, again["json"]  # counted by its first run, not refused
    assert again["json"]["id"] == first["json"]["id"]
    assert len(twilio.messages) == 10
