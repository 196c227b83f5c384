"""Pacing slots further ahead than SQS can delay (900 s): the worker holds a send that arrives
before its slot. The app's clock and SQS's move together; nothing sleeps."""

from __future__ import annotations

import pytest

from chalicelib.core import settings
from chalicelib.messaging import deps, messages, pacing
from tests.functional.conftest import run_schedule

TO = "+15105551212"


@pytest.fixture
def later(frozen):
    """Let time pass for the app and for SQS alike (frozen.advance moves both)."""
    return frozen.advance


def test_a_send_that_arrives_before_its_slot_waits_for_it(
    caller, twilio, jobs, frozen, later, monkeypatch
):
    monkeypatch.setenv("SWITCHBOARD_SEND_RATE", "1")
    settings.reset()
    table = deps.table()
    pacing.reserve(table, 1000, 1.0, frozen.now)  # 1,000 s of sending already reserved
    response = caller.api("/messages", {"to": TO, "body": "at my slot"})
    assert (response["statusCode"], response["json"]["status"]) == (202, "queued")
    message_id = response["json"]["id"]
    later(900)  # SQS's longest delay: the job comes back 100 s before its slot
    jobs.drain()
    early = table.get(messages.key(message_id))
    assert (early["status"], early["attempts"]) == ("queued", 0)
    assert twilio.messages == []
    later(99)
    assert jobs.drain() == 0  # held until the slot, not before
    later(1)
    jobs.drain()
    sent = table.get(messages.key(message_id))
    assert (sent["status"], sent["attempts"]) == ("sent", 1)
    assert len(twilio.messages) == 1


def test_sending_at_the_default_rate_is_paced_and_nothing_goes_twice_or_early(
    caller, twilio, jobs, frozen, monkeypatch
):
    """The rest of the suite runs at 1,000/s; this runs production's default rate of 1/s, with
    the clock moving a second at a time and the minute trigger every minute."""
    from chalicelib.core import clock

    monkeypatch.delenv("SWITCHBOARD_SEND_RATE")
    settings.reset()
    assert settings.load().send_rate == settings.DEFAULT_SEND_RATE == 1.0
    start = frozen.now
    send_at = start + 120
    later = caller.api("/messages", {"to": TO, "body": "reminder", "send_at": clock.iso(send_at)})
    assert later["statusCode"] == 202
    recipients = [f"+1415555{i:04d}" for i in range(4)]
    twilio.script_faults("429")  # the broadcast's first create: retried after its backoff
    created = caller.api("/broadcasts", {"to": recipients, "body": "sale"})
    assert created["statusCode"] == 202
    creates: list[tuple[float, str, int]] = []  # (app time, to, Twilio's status) of each create

    def run() -> None:
        jobs.drain()
        posts = [r for r in twilio.requests if r.method == "POST"]
        for request in posts[len(creates) :]:
            creates.append((frozen.now - start, dict(request.params)["To"], request.status))

    run()
    second = 0
    while second < 180:
        # A second at a time where sends are due (the broadcast, the reminder), else ten.
        step = 1 if second < 30 or 100 <= second < 130 else 10
        frozen.advance(step)
        second += step
        if second % 60 == 0:
            run_schedule("dispatch_due")
        run()
    sent = sorted(m["to"] for m in twilio.messages)
    assert sent == sorted([*recipients, TO])  # each once
    ((refused, busy, _),) = [c for c in creates if c[2] == 429]
    assert refused == 0  # the broadcast's first slot
    (retried,) = [t for t, to, status in creates if status == 201 and to == busy]
    assert retried >= refused + 2.5  # backoff(1): 5 s x [0.5, 1.5], then a slot of its own
    assert max(t for t, to, _ in creates if to != TO) <= 10
    (reminder,) = [t for t, to, _ in creates if to == TO]
    assert 120 <= reminder <= 121  # at its send_at, never before
    # At 1/s: no window of w seconds holds more than w + 1 creates (a job may run up to a
    # second before its slot, SQS delays being whole seconds).
    times = [t for t, _, _ in creates]
    for first in times:
        for width in (1, 2, 3, 5):
            assert sum(first <= t < first + width for t in times) <= width + 1, creates


@pytest.fixture
def dynamodb_calls(app):
    """The DynamoDB operations the app's client sends, counted by botocore's own event hook."""
    from chalicelib.aws import storage

    made: list[str] = []
    events = storage.get_client().meta.events
    unique_id = "count-pacing-calls"

    def count(model, **_):
        made.append(model.name)

    events.register("before-call.dynamodb", count, unique_id=unique_id)
    yield made
    events.unregister("before-call.dynamodb", unique_id=unique_id)


def _counter_ms(table) -> int:
    return int(table.get(pacing.LIMITER_KEY)["next_ms"])


def test_an_idle_sender_takes_its_slot_in_one_write(dynamodb_calls, frozen, monkeypatch):
    table = deps.table()
    pacing.reserve(table, 1, 1.0, frozen.now - 600)  # the last send was ten minutes ago
    monkeypatch.setattr(pacing, "_seen_ms", 0)  # a new container: it has seen no counter
    dynamodb_calls.clear()
    assert pacing.reserve(table, 1, 1.0, frozen.now) == [frozen.now]
    assert dynamodb_calls == ["PutItem"]
    dynamodb_calls.clear()
    # Now ahead of now: the next slot is one ADD, a second later.
    assert pacing.reserve(table, 1, 1.0, frozen.now) == [frozen.now + 1]
    assert dynamodb_calls == ["UpdateItem"]


@pytest.mark.parametrize("seen", ["behind", "ahead"])
def test_a_container_that_saw_the_counter_long_ago_still_gets_the_next_free_slot(
    dynamodb_calls, frozen, monkeypatch, seen
):
    """Other containers moved the counter since: whichever write this one tries first, it gets
    the slot after theirs, never one of theirs."""
    table = deps.table()
    if seen == "behind":  # it thinks the sender idle; another container queued 10 s ahead
        pacing.reserve(table, 10, 1.0, frozen.now)
        monkeypatch.setattr(pacing, "_seen_ms", 0)
        expected, first = frozen.now + 10, ["PutItem", "UpdateItem"]
    else:  # it saw a queue; the counter fell behind now since
        pacing.reserve(table, 10, 1.0, frozen.now - 600)
        monkeypatch.setattr(pacing, "_seen_ms", 10**15)
        expected, first = frozen.now, ["UpdateItem", "PutItem"]
    dynamodb_calls.clear()
    assert pacing.reserve(table, 1, 1.0, frozen.now) == [expected]
    assert dynamodb_calls == first
    assert _counter_ms(table) == int((expected + 1) * 1000)
