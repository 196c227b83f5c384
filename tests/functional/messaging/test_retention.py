"""Retention (DynamoDB TTL, expires_at) counts from a record's final state, never from its
creation: a message scheduled months ahead is still there to be sent, and a broadcast outlives
its messages. Read straight from the table in the moto server."""

from __future__ import annotations

import math

from chalicelib.core import clock
from chalicelib.messaging import broadcasts, calls, deps, messages
from devkit import demo
from tests.functional.conftest import run_schedule

TO = "+15105551212"
DAY = 86400
RETENTION = 90 * DAY  # the default SWITCHBOARD_RETENTION_DAYS


def item(pk):
    return deps.table().get(pk)


def schedule(caller, frozen, days, to=TO):
    payload = {"to": to, "body": "far ahead", "send_at": clock.iso(frozen.now + days * DAY)}
    response = caller.api("/messages", payload)
    assert response["statusCode"] == 202, response["json"]
    return response["json"]["id"]


def test_a_message_scheduled_past_the_retention_outlives_its_send_time(caller, frozen):
    message_id = schedule(caller, frozen, 200)
    record = item(messages.key(message_id))
    assert record["expires_at"] >= record["send_at"] + RETENTION


def test_a_message_sent_months_ahead_is_kept_from_when_it_ended(caller, twilio, jobs, frozen):
    message_id = schedule(caller, frozen, 200)
    frozen.advance(200 * DAY)
    run_schedule("dispatch_due")
    jobs.drain()
    sent = item(messages.key(message_id))
    assert sent["status"] == "sent"
    assert sent["expires_at"] > frozen.now + RETENTION - 1  # sent is not final: still kept
    frozen.advance(3600)
    params = {"MessageSid": sent["sid"], "MessageStatus": "delivered"}
    response = caller.webhook(
        f"/status/messages?id={message_id}", {**params, "AccountSid": demo.ACCOUNT_SID}
    )
    assert response["statusCode"] == 200
    delivered = item(messages.key(message_id))
    assert delivered["status"] == "delivered"
    assert delivered["expires_at"] == math.ceil(frozen.now + RETENTION)


def test_a_refused_or_canceled_message_is_kept_from_when_it_ended(caller, jobs, frozen):
    refused_id = schedule(caller, frozen, 1, to="+15005550001")  # Twilio answers 21211
    canceled_id = schedule(caller, frozen, 200)
    frozen.advance(DAY)
    run_schedule("dispatch_due")
    jobs.drain()
    refused = item(messages.key(refused_id))
    assert refused["status"] == "failed"
    assert refused["expires_at"] == math.ceil(frozen.now + RETENTION)
    frozen.advance(100 * DAY)
    assert caller.api(f"/messages/{canceled_id}", method="DELETE")["statusCode"] == 200
    assert item(messages.key(canceled_id))["expires_at"] == math.ceil(frozen.now + RETENTION)


def test_a_call_is_kept_from_when_it_ended(caller, frozen):
    call = caller.api("/calls", {"to": TO})["json"]
    frozen.advance(3 * 3600)
    params = {"CallSid": call["sid"], "CallStatus": "completed"}
    assert caller.webhook(f"/status/calls?id={call['id']}", params)["statusCode"] == 200
    record = item(calls.key(call["id"]))
    assert record["status"] == "completed"
    assert record["expires_at"] == math.ceil(frozen.now + RETENTION)


def test_a_broadcast_outlives_its_messages(caller, twilio, jobs, frozen):
    payload = {
        "to": [TO, "+15105550000"],
        "body": "sale",
        "send_at": clock.iso(frozen.now + 200 * DAY),
    }
    broadcast_id = caller.api("/broadcasts", payload)["json"]["id"]
    ids = [r["id"] for r in _recipients(caller, broadcast_id)]

    def outlives() -> bool:
        kept = item(broadcasts.key(broadcast_id))["expires_at"]
        return all(kept >= item(messages.key(i))["expires_at"] for i in ids)

    assert item(broadcasts.key(broadcast_id))["expires_at"] >= frozen.now + 200 * DAY + RETENTION
    assert outlives()
    frozen.advance(200 * DAY)
    run_schedule("dispatch_due")
    jobs.drain()
    # Long after: Twilio's last callbacks come a year late (or the sending itself was late).
    frozen.advance(365 * DAY)
    for message_id in ids:
        sid = item(messages.key(message_id))["sid"]
        params = {"MessageSid": sid, "MessageStatus": "undelivered", "AccountSid": demo.ACCOUNT_SID}
        caller.webhook(f"/status/messages?id={message_id}", params)
    assert {item(messages.key(i))["status"] for i in ids} == {"undelivered"}
    assert outlives()


def _recipients(caller, broadcast_id):
    answer = caller.api(f"/broadcasts/{broadcast_id}?recipients=true", method="GET")
    return answer["json"]["recipients"]
