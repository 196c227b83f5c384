"""A signed webhook acts once: replays and re-cut replays of it change nothing.

Twilio signs the URL followed by every POST name and value, sorted and joined with nothing
between them, so moving a boundary (between a name and its value, between two fields, between
the query and the body) keeps a captured signature valid. These tests send such re-cuts.
"""

from __future__ import annotations

import boto3
import pytest
from twilio.request_validator import RequestValidator

from chalicelib.messaging import deps, optouts
from devkit import demo, resources
from tests.functional.conftest import EXECUTE_API

TO = "+15105551212"
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
CALL = {
    "AccountSid": demo.ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "CallSid": "CA" + "c" * 32,
    "CallStatus": "in-progress",
    "Called": demo.NUMBER,
    "Caller": "+13105550110",
    "Direction": "inbound",
    "From": "+13105550110",
    "To": demo.NUMBER,
}
CONFERENCE = (
    "/twimlets/conference?Moderators%5B%5D=%2B12125550147&EnableSmsNotifications=1&Name=standup"
)
VOICEMAIL = "/twimlets/voicemail?Transcribe=false&NotifySms=%2B16175550100"


def inbound(sid, body):
    return {
        "AccountSid": demo.ACCOUNT_SID,
        "Body": body,
        "From": TO,
        "MessageSid": sid,
        "NumMedia": "0",
        "To": demo.NUMBER,
    }


def signed(path, params):
    """X-Twilio-Signature of a POST to path with params, as Twilio computes it."""
    return RequestValidator(demo.AUTH_TOKEN).compute_signature(EXECUTE_API + path, params)


def recut_sid(params, name, following):
    """params with `following` absorbed into the value of `name` (the same signed string)."""
    recut = {k: v for k, v in params.items() if k != following}
    recut[name] = params[name] + following + params[following]
    return recut


def opted_out():
    return optouts.is_opted_out(deps.table(), TO)


def test_an_old_start_recut_into_a_new_message_sid_never_undoes_a_later_stop(caller):
    stop, start, again = ("SM" + c * 32 for c in "abc")
    caller.webhook("/sms", inbound(stop, "STOP"))
    original = inbound(start, "START")
    caller.webhook("/sms", original)
    caller.webhook("/sms", inbound(again, "STOP"))
    assert opted_out()
    recut = recut_sid(original, "MessageSid", "NumMedia")  # MessageSid "SM…NumMedia0"
    response = caller.webhook("/sms", recut, signature=signed("/sms", original))
    assert response["statusCode"] == 200
    assert response["body"] == EMPTY
    assert opted_out()


def test_a_request_without_a_well_formed_sid_has_no_effect_even_on_first_delivery(caller):
    # The re-cut arrives first: its signature is new, its MessageSid is not a SID.
    original = inbound("SM" + "d" * 32, "STOP")
    recut = recut_sid(original, "MessageSid", "NumMedia")
    assert caller.webhook("/sms", recut, signature=signed("/sms", original))["statusCode"] == 200
    missing = {k: v for k, v in inbound("SM" + "e" * 32, "STOP").items() if k != "MessageSid"}
    assert caller.webhook("/sms", missing)["statusCode"] == 200
    assert not opted_out()
    assert caller.api("/inbound", method="GET")["json"]["messages"] == []


def test_a_conference_join_with_its_call_sid_recut_away_texts_nobody_again(caller, jobs, twilio):
    assert caller.webhook(CONFERENCE, CALL)["statusCode"] == 200
    jobs.drain()
    assert [m["to"] for m in twilio.messages] == ["+12125550147"]
    recut = recut_sid(CALL, "ApiVersion", "CallSid")  # no CallSid field any more
    for _ in range(3):
        response = caller.webhook(CONFERENCE, recut, signature=signed(CONFERENCE, CALL))
        assert response["statusCode"] == 200
        assert "<Conference" in response["body"]  # the caller still gets the room
    jobs.drain()
    assert len(twilio.messages) == 1


def test_a_join_or_a_recording_without_its_sid_notifies_nobody(caller, jobs, twilio):
    no_call = {k: v for k, v in CALL.items() if k != "CallSid"}
    assert caller.webhook(CONFERENCE, no_call)["statusCode"] == 200
    recording = {**CALL, "RecordingUrl": "https://api.twilio.com/2010-04-01/Recordings/RE1"}
    assert caller.webhook(VOICEMAIL, recording)["statusCode"] == 200
    jobs.drain()
    assert twilio.messages == []


def test_a_status_callback_without_a_sid_moves_nothing(caller):
    data = caller.api("/messages", {"to": TO, "body": "hello"})["json"]
    path = f"/status/messages?id={data['id']}"
    assert caller.webhook(path, {"MessageStatus": "failed"})["statusCode"] == 200
    calls = caller.api("/calls", {"to": TO})["json"]
    assert caller.webhook(f"/status/calls?id={calls['id']}", {"CallStatus": "failed"})
    assert caller.api(f"/messages/{data['id']}", method="GET")["json"]["status"] == "sent"
    assert caller.api(f"/calls/{calls['id']}", method="GET")["json"]["status"] != "failed"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/sms", inbound("SM" + "f" * 32, "hello")),
        ("/status/messages", {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}),
        ("/status/calls", {"CallSid": "CA" + "1" * 32, "CallStatus": "completed"}),
        (CONFERENCE, CALL),
        (
            VOICEMAIL,
            {**CALL, "RecordingUrl": "https://x.example/r", "RecordingSid": "RE" + "1" * 32},
        ),
    ],
)
def test_a_replay_is_answered_neutrally_and_logged(caller, log_lines, path, params):
    first = caller.webhook(path, params)
    assert first["statusCode"] == 200
    log_lines()
    again = caller.webhook(path, params)
    assert again["statusCode"] == 200
    assert any(line["message"] == "webhook replay ignored" for line in log_lines())


def test_twilios_retry_after_our_failure_is_still_applied(caller):
    # Our processing fails after the request was remembered (the record cannot take the
    # callback): the 500 makes Twilio retry the same signed request, which must then land.
    data = caller.api("/messages", {"to": TO, "body": "hello"})["json"]
    dynamodb = boto3.client("dynamodb")
    table = resources.names("dev")["MessagesTable"]
    key = {"pk": {"S": f"msg#{data['id']}"}}
    history = dynamodb.get_item(TableName=table, Key=key)["Item"]["history"]
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET history = :s",
        ExpressionAttributeValues={":s": {"S": "not a list"}},
    )
    path = f"/status/messages?id={data['id']}"
    params = {"MessageSid": data["sid"], "MessageStatus": "delivered"}
    assert caller.webhook(path, params)["statusCode"] == 500
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET history = :h",
        ExpressionAttributeValues={":h": history},
    )
    assert caller.webhook(path, params)["statusCode"] == 200
    assert caller.api(f"/messages/{data['id']}", method="GET")["json"]["status"] == "delivered"
