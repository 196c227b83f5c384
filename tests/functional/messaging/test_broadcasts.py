"""Broadcasts and pacing, and the fault test: nothing lost, nothing sent twice."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.core import clock
from chalicelib.messaging import deps, pacing
from tests.functional.conftest import run_schedule

TO = "+15105551212"


def create(caller, payload, **options):
    return caller.api("/broadcasts", payload, **options)


def counts(caller, broadcast_id):
    response = caller.api(f"/broadcasts/{broadcast_id}", method="GET")
    assert response["statusCode"] == 200
    return response["json"]


def numbers(count, start=0):
    return [f"+1415555{i:04d}" for i in range(start, start + count)]


def test_broadcast_counts_and_rejections(caller, twilio, jobs):
    caller.webhook(
        "/sms",
        {
            "MessageSid": "SM" + "1" * 32,
            "From": "+14155550002",
            "To": "+15005550006",
            "Body": "STOP",
        },
    )
    payload = {
        "to": [*numbers(3), "+14155550001", "4155550009", 12],
        "body": "Storewide sale today",
    }
    response = create(caller, payload)
    assert response["statusCode"] == 202
    data = response["json"]
    assert data["count"] == 2
    assert sorted(data["rejected"], key=lambda r: r["to"]) == [
        {"to": "+14155550001", "reason": "duplicate"},
        {"to": "+14155550002", "reason": "opted_out"},
        {"to": "12", "reason": "invalid_number"},
        {"to": "4155550009", "reason": "invalid_number"},
    ]
    jobs.drain()
    assert counts(caller, data["id"]) == {"id": data["id"], "count": 2, "counts": {"sent": 2}}
    assert sorted(m["to"] for m in twilio.messages) == ["+14155550000", "+14155550001"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": [], "body": "x"}, "to"),
        ({"to": TO, "body": "x"}, "to"),
        ({"to": [TO] * 10_001, "body": "x"}, "to"),
        ({"to": [TO], "body": ""}, "body"),
        ({"to": [TO], "body": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_broadcasts_are_400(caller, twilio, payload, field):
    response = create(caller, payload)
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == field


def test_scheduled_broadcast_can_be_canceled(caller, twilio, jobs, frozen):
    send_at = clock.iso(frozen.now + 600)
    data = create(caller, {"to": numbers(5), "body": "later", "send_at": send_at})["json"]
    assert counts(caller, data["id"])["counts"] == {"scheduled": 5}
    canceled = caller.api(f"/broadcasts/{data['id']}", method="DELETE")
    assert canceled["statusCode"] == 200
    assert canceled["json"]["canceled"] == 5
    frozen.advance(600)
    run_schedule("dispatch_due")
    jobs.drain()
    assert twilio.messages == []
    assert counts(caller, data["id"])["counts"] == {"canceled": 5}


def test_unknown_broadcast_is_404(caller):
    assert caller.api("/broadcasts/nope", method="GET")["statusCode"] == 404
    assert caller.api("/broadcasts/nope", method="DELETE")["statusCode"] == 404


def test_replayed_broadcast_with_key_creates_nothing_more(caller, twilio, jobs):
    headers = {"Idempotency-Key": "sale-2026-11"}
    first = create(caller, {"to": numbers(4), "body": "sale"}, headers=headers)
    again = create(caller, {"to": numbers(4), "body": "sale"}, headers=headers)
    assert again["json"] == first["json"]
    jobs.drain()
    assert len(twilio.messages) == 4


def test_a_retry_after_a_failure_mid_write_with_an_opt_out_between_texts_each_recipient_once(
    caller, twilio, jobs, aws_faults
):
    from chalicelib.messaging import optouts

    recipients = numbers(30)  # two batches: 25 written, then DynamoDB fails the other 5
    headers = {"Idempotency-Key": "crash-1"}
    # The first batch goes through; the second fails on both of the API's SDK attempts.
    aws_faults.script("dynamodb:BatchWriteItem", ["ok", "500", "throttle"])
    failed = create(caller, {"to": recipients, "body": "sale"}, headers=headers)
    assert failed["statusCode"] == 503, failed["json"]
    assert aws_faults.counts() == {
        "dynamodb:BatchWriteItem 500": 1,
        "dynamodb:BatchWriteItem throttle": 1,
    }
    # Between the two tries: one recipient already written opts out, and one not yet written.
    optouts.record_opt_out(deps.table(), recipients[1], source="test")
    optouts.record_opt_out(deps.table(), recipients[27], source="test")
    retried = create(caller, {"to": recipients, "body": "sale"}, headers=headers)
    assert retried["statusCode"] == 202, retried["json"]
    opted = [{"to": recipients[i], "reason": "opted_out"} for i in (1, 27)]
    assert sorted(retried["json"]["rejected"], key=lambda r: r["to"]) == opted
    run_schedule("dispatch_due")
    jobs.drain()
    texted = sorted(m["to"] for m in twilio.messages)
    assert texted == sorted(n for i, n in enumerate(recipients) if i not in (1, 27))
    # The same broadcast, completed: the part written before the failure is in it (the opted-out
    # recipient's record ends opted_out at the worker), not left behind under another id.
    states = counts(caller, retried["json"]["id"])["counts"]
    assert states == {"sent": 28, "opted_out": 1}


def test_a_key_used_again_after_it_expired_is_a_new_broadcast(caller, twilio, jobs, frozen):
    headers = {"Idempotency-Key": "monthly"}
    first = create(caller, {"to": numbers(3), "body": "news"}, headers=headers)["json"]
    run_schedule("dispatch_due")
    jobs.drain()
    frozen.advance(24 * 3600 + 1)
    second = create(caller, {"to": numbers(3), "body": "news"}, headers=headers)["json"]
    assert second["id"] != first["id"] and second["count"] == 3
    run_schedule("dispatch_due")
    jobs.drain()
    assert len(twilio.messages) == 6


def test_pacing_reserves_slots_at_the_rate_within_a_horizon(app, ssm):
    table = deps.table()
    now = 1_000_000.0
    assert pacing.capacity(table, 2.0, now) == 240
    first = pacing.reserve(table, 3, 2.0, now)
    assert first == [now, now + 0.5, now + 1.0]
    second = pacing.reserve(table, 2, 2.0, now)
    assert second == [now + 1.5, now + 2.0]
    assert pacing.capacity(table, 2.0, now) == 240 - 5
    # Time passing frees the slots it passed.
    assert pacing.reserve(table, 1, 2.0, now + 100) == [now + 100]


def test_dispatch_enqueues_no_more_than_the_horizon_holds(caller, monkeypatch, jobs, frozen):
    monkeypatch.setenv("SWITCHBOARD_SEND_RATE", "0.05")  # one message every 20 s
    data = create(caller, {"to": numbers(10), "body": "slow"})["json"]
    assert jobs.poll_once() == (1, 0)  # the dispatch job the broadcast queued
    # 120 s of horizon at 0.05/s: six slots (0, 20, ... 100 s); the rest wait in the table.
    assert counts(caller, data["id"])["counts"] == {"queued": 6, "scheduled": 4}


def test_slots_start_when_messages_reach_the_queue(caller, monkeypatch, jobs, frozen):
    from chalicelib.aws import jobs as jobs_module
    from chalicelib.messaging import messages

    monkeypatch.setenv("SWITCHBOARD_SEND_RATE", "0.5")  # one message every 2 s
    visible: list[float] = []  # when each enqueued send job becomes visible
    defer_many = jobs_module.defer_many

    def recording(kind, entries):
        if kind == "send":
            visible.extend(frozen.now + delay for _, delay in entries)
        defer_many(kind, entries)

    monkeypatch.setattr(jobs_module, "defer_many", recording)
    try_move = messages.try_move

    def slow_claim(*args, **kwargs):
        frozen.advance(10)  # claiming is slow in this run: 30 s for three
        return try_move(*args, **kwargs)

    monkeypatch.setattr(messages, "try_move", slow_claim)
    create(caller, {"to": numbers(3), "body": "first"})
    assert jobs.poll_once() == (1, 0)
    monkeypatch.setattr(messages, "try_move", try_move)
    frozen.advance(1)
    create(caller, {"to": numbers(3, start=100), "body": "second"})
    assert jobs.poll_once()[0] >= 1
    # Six sends, never two within one slot (2 s), though the first run took 30 s to claim.
    assert len(visible) == 6
    ordered = sorted(visible)
    assert all(b - a >= 2 for a, b in itertools.pairwise(ordered))


def test_each_recipients_status_a_page_at_a_time(caller, twilio, jobs):
    created = create(caller, {"to": numbers(5), "body": "pages"})["json"]
    run_schedule("dispatch_due")
    jobs.drain()
    seen, token = [], None
    for _ in range(5):
        query = "?recipients=true&limit=2" + (f"&next={token}" if token else "")
        page = caller.api(f"/broadcasts/{created['id']}{query}", method="GET")["json"]
        assert len(page["recipients"]) <= 2
        seen += page["recipients"]
        token = page["next"]
        if not token:
            break
    assert sorted(r["to"] for r in seen) == numbers(5)
    assert {r["status"] for r in seen} == {"sent"} and all(r["sid"] for r in seen)
    bad = caller.api(f"/broadcasts/{created['id']}?recipients=true&next=nope", method="GET")
    assert (bad["statusCode"], bad["json"]["error"]["field"]) == (400, "next")
