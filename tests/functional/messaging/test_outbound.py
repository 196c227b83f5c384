"""POST /messages and POST /calls through the real twilio client to the local Twilio API."""

from __future__ import annotations

import json

import pytest

from chalicelib.core import settings
from chalicelib.telephony import twilio_rest
from devkit import demo
from tests.functional.conftest import EXECUTE_API

TO = "+15105551212"
SERVICE = "MG" + "0" * 32


def test_send_message(caller, twilio):
    response = caller.api("/messages", {"to": TO, "body": "Your table is ready"})
    assert response["statusCode"] == 201
    data = response["json"]
    assert set(data) == {"id", "sid", "status", "to", "from"}
    assert data["sid"].startswith("SM") and data["status"] == "sent"
    assert (data["to"], data["from"]) == (TO, demo.NUMBER)
    (sent,) = twilio.messages
    assert (sent["sid"], sent["body"], sent["from"]) == (
        data["sid"],
        "Your table is ready",
        demo.NUMBER,
    )
    assert twilio.requests[-1].username == demo.ACCOUNT_SID


def test_send_through_messaging_service_with_media(caller, twilio):
    payload = {"to": TO, "from": SERVICE, "body": "", "media_urls": ["https://example.com/a.jpg"]}
    response = caller.api("/messages", payload)
    assert response["statusCode"] == 201, response["json"]
    (sent,) = twilio.messages
    assert sent["messaging_service_sid"] == SERVICE
    assert sent["from"] is None
    request = twilio.requests[-1]
    assert ("MediaUrl", "https://example.com/a.jpg") in request.params
    assert ("MessagingServiceSid", SERVICE) in request.params


def test_api_key_is_used_when_configured(caller, ssm, twilio):
    demo.put_parameters(ssm, demo.SSM_PATH, demo.parameters(api_key=True))
    assert caller.api("/messages", {"to": TO, "body": "hi"})["statusCode"] == 201
    request = twilio.requests[-1]
    assert request.username == demo.API_KEY_SID
    assert f"/Accounts/{demo.ACCOUNT_SID}/" in request.path


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "hi"}, "to"),
        ({"to": "5105551212", "body": "hi"}, "to"),
        ({"to": 15105551212, "body": "hi"}, "to"),
        ({"to": TO}, "body"),
        ({"to": TO, "body": "   "}, "body"),
        ({"to": TO, "body": "x" * 1601}, "body"),
        ({"to": TO, "body": "hi", "From": demo.NUMBER}, "From"),
        ({"to": TO, "body": "hi", "from": "Acme"}, "from"),
        ({"to": TO, "body": "hi", "media_urls": "https://a"}, "media_urls"),
        ({"to": TO, "body": "hi", "media_urls": ["ftp://a"]}, "media_urls"),
        ({"to": TO, "body": "hi", "media_urls": []}, "media_urls"),
    ],
)
def test_bad_message_input_names_the_field(caller, twilio, payload, field):
    response = caller.api("/messages", payload)
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == field
    assert twilio.requests == []


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", "null", '"text"'])
def test_body_must_be_a_json_object(caller, body):
    response = caller.api("/messages", body)
    assert response["statusCode"] == 400
    assert "JSON" in response["json"]["error"]["message"]


def test_body_of_exactly_1600_characters_is_accepted(caller):
    assert caller.api("/messages", {"to": TO, "body": "x" * 1600})["statusCode"] == 201


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_twilio_request_errors_pass_through(caller, to, code):
    response = caller.api("/messages", {"to": to, "body": "hi"})
    assert response["statusCode"] == 400
    error = response["json"]["error"]
    assert error["twilio_code"] == code
    assert error["message"]


def test_twilio_refusing_our_credentials_is_502(caller, ssm, log_lines):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/twilio/auth_token",
        Value="wrong-demo-token",
        Type="SecureString",
        Overwrite=True,
    )
    response = caller.api("/messages", {"to": TO, "body": "hi"})
    assert response["statusCode"] == 502
    assert response["json"]["error"]["twilio_code"] == 20003
    assert "wrong-demo-token" not in str(log_lines())


@pytest.mark.parametrize(
    ("status", "answer"), [(500, "sending"), (502, "sending"), (503, "queued"), (429, "queued")]
)
def test_twilio_failures_hand_the_message_to_the_worker(caller, twilio, status, answer):
    # 429 and 503 say "not now": queued. A 500 or 502 may come after Twilio created it:
    # unconfirmed, to be looked up before anything is sent again. Never failed, never 5xx.
    twilio.set_faults(rate=1.0, statuses=(status,))
    response = caller.api("/messages", {"to": TO, "body": "hi"})
    assert response["statusCode"] == 202
    assert response["json"]["status"] == answer
    assert response["json"].get("unconfirmed", False) is (answer == "sending")
    assert twilio.messages == []


def test_twilio_timeout_is_unconfirmed_not_an_error(caller, twilio, monkeypatch):
    monkeypatch.setattr(twilio_rest, "REQUEST_TIMEOUT", 0.2)
    # Answered after the client gave up; the create is put off and never lands (no record of
    # this test's can reach the next test's fake Twilio).
    twilio.set_faults(late_seconds=0.5, create_after=3600)
    twilio.script_faults("late-then-create")
    response = caller.api("/messages", {"to": TO, "body": "hi"})
    assert response["statusCode"] == 202
    assert response["json"]["unconfirmed"] is True


def test_twilio_unreachable_is_unconfirmed(caller, monkeypatch):
    assert caller.api("/messages", {"to": TO, "body": "first"})["statusCode"] == 201
    # The account's numbers are known now (guards.senders); then Twilio goes away.
    monkeypatch.setenv("TWILIO_API_BASE_URL", "http://127.0.0.1:9")
    settings.reset()
    response = caller.api("/messages", {"to": TO, "body": "hi"})
    assert (response["statusCode"], response["json"]["status"]) == (202, "sending")


def test_missing_default_sender_names_from(caller, ssm):
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/twilio/default_from")
    response = caller.api("/messages", {"to": TO, "body": "hi"})
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == "from"


def test_place_call_defaults_to_this_apps_voice_url(caller, twilio):
    response = caller.api("/calls", {"to": TO})
    assert response["statusCode"] == 201
    assert response["json"]["sid"].startswith("CA")
    assert response["json"]["status"] == "queued"
    (call,) = twilio.calls
    assert call["url"] == f"{EXECUTE_API}/voice"
    assert call["from"] == demo.NUMBER


@pytest.mark.parametrize(
    ("base", "public_url", "expected"),
    [
        ("https://voice.example.com/tel", None, "https://voice.example.com/tel/voice"),
        (EXECUTE_API, "https://voice.example.com", "https://voice.example.com/voice"),
    ],
)
def test_default_call_url_follows_domain_and_public_url(
    caller, twilio, monkeypatch, base, public_url, expected
):
    if public_url:
        monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", public_url)
    assert caller.api("/calls", {"to": TO}, base=base)["statusCode"] == 201
    assert twilio.calls[-1]["url"] == expected


def test_place_call_with_say_and_twiml(caller, twilio):
    assert caller.api("/calls", {"to": TO, "say": "Reminder <3"})["statusCode"] == 201
    assert twilio.calls[-1]["twiml"] == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Reminder &lt;3</Say></Response>'
    )
    twiml = "<Response><Play>https://example.com/a.mp3</Play></Response>"
    assert caller.api("/calls", {"to": TO, "twiml": twiml})["statusCode"] == 201
    assert twilio.calls[-1]["twiml"] == twiml


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "to"),
        ({"to": "+1"}, "to"),
        ({"to": TO, "url": "https://a", "say": "x"}, "say"),
        ({"to": TO, "url": "/relative"}, "url"),
        ({"to": TO, "say": ""}, "say"),
        ({"to": TO, "twiml": " "}, "twiml"),
        ({"to": TO, "say": "x" * 4000}, "say"),
        ({"to": TO, "from": SERVICE}, "from"),
        ({"to": TO, "record": True}, "record"),
    ],
)
def test_bad_call_input_names_the_field(caller, twilio, payload, field):
    response = caller.api("/calls", payload)
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == field
    assert twilio.calls == []


def test_call_needs_from_when_default_is_a_messaging_service(caller, ssm):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/twilio/default_from", Value=SERVICE, Type="String", Overwrite=True
    )
    response = caller.api("/calls", {"to": TO})
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == "from"
    assert caller.api("/calls", {"to": TO, "from": demo.NUMBER})["statusCode"] == 201


def test_call_errors_from_twilio(caller):
    response = caller.api("/calls", {"to": "+15005550004"})
    assert response["statusCode"] == 400
    assert response["json"]["error"]["twilio_code"] == 21216


def test_parameter_store_down_is_503(caller, monkeypatch):
    from chalicelib.aws import parameters

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    parameters.reset()
    response = caller.api("/messages", {"to": TO, "body": "hi"})
    assert response["statusCode"] == 503


def test_destinations_outside_the_allowed_prefixes_are_refused(caller, ssm, twilio):
    london = "+442071838750"
    for path, payload in (("/messages", {"to": london, "body": "hi"}), ("/calls", {"to": london})):
        response = caller.api(path, payload)
        assert response["statusCode"] == 400
        assert response["json"]["error"]["field"] == "to"
        assert "outbound/allowed_prefixes" in response["json"]["error"]["message"]
    assert twilio.requests == []
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/outbound/allowed_prefixes", Value="+1, +44", Type="String"
    )
    from chalicelib.aws import parameters

    parameters.reset()
    assert caller.api("/messages", {"to": london, "body": "hi"})["statusCode"] == 201


def test_call_with_idempotency_key_is_placed_once(caller, twilio):
    headers = {"Idempotency-Key": "call-1"}
    first = caller.api("/calls", {"to": TO, "say": "hi"}, headers=headers)
    again = caller.api("/calls", {"to": TO, "say": "hi"}, headers=headers)
    assert first["statusCode"] == again["statusCode"] == 201
    assert again["json"] == first["json"]
    assert len(twilio.calls) == 1


def test_a_form_body_gets_the_api_error_shape(caller):
    from devkit.events import rest_event

    event = rest_event(
        "POST",
        f"{EXECUTE_API}/messages",
        routes=caller.routes,
        body="to=%2B15105551212&body=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = caller.invoke(event)
    assert response["statusCode"] == 400
    assert "JSON" in json.loads(response["body"])["error"]["message"]


# --- calls without a clear answer ----------------------------------------------------------


@pytest.fixture
def impatient(monkeypatch):
    monkeypatch.setattr(twilio_rest, "REQUEST_TIMEOUT", 0.3)
    twilio_rest._client_cache.clear()


def place(caller, key, payload=None):
    headers = {"Idempotency-Key": key}
    return caller.api("/calls", payload or {"to": TO, "say": "hi"}, headers=headers)


def call_record(caller, call_id):
    return caller.api(f"/calls/{call_id}", method="GET")["json"]


@pytest.mark.parametrize("fault", ["late", "500-after-create", "drop-after-create"])
def test_a_call_without_a_clear_answer_rings_once_and_callbacks_settle_it(
    caller, twilio, impatient, fault
):
    twilio.set_faults(late_seconds=0.6)
    twilio.script_faults(fault)
    first = place(caller, f"call-{fault}")
    assert first["statusCode"] == 202
    assert first["json"]["unconfirmed"] is True and first["json"]["status"] == "queued"
    again = place(caller, f"call-{fault}")
    assert (again["statusCode"], again["json"]) == (202, first["json"])
    assert len(twilio.calls) == 1  # created before its answer went wrong, not later
    (placed,) = twilio.calls
    # Twilio calls back to the URL it was given: our id is in it, so the record is found
    # although the create's answer (and so the SID) never reached us.
    callback = placed["status_callback"].removeprefix(EXECUTE_API)
    params = {"CallSid": placed["sid"], "CallStatus": "ringing", "AccountSid": demo.ACCOUNT_SID}
    assert caller.webhook(callback, params)["statusCode"] == 200
    record = call_record(caller, first["json"]["id"])
    assert (record["status"], record["sid"]) == ("ringing", placed["sid"])
    assert len(twilio.calls) == 1


def test_reconcile_settles_unconfirmed_calls_from_twilios_list(caller, twilio, impatient, frozen):
    from tests.functional.conftest import run_schedule

    twilio.set_faults(late_seconds=0.6)
    twilio.script_faults("drop-after-create", "500")  # the first exists, the second does not
    rang = place(caller, "call-rang")["json"]
    lost = place(caller, "call-lost", {"to": "+15105550000", "say": "hi"})["json"]
    assert rang["unconfirmed"] and lost["unconfirmed"]
    assert len(twilio.calls) == 1  # created before its answer went wrong, not later
    run_schedule("reconcile_sending")  # too early: callbacks may still come
    assert call_record(caller, rang["id"])["sid"] is None
    frozen.advance(121)
    run_schedule("reconcile_sending")
    found, missing = call_record(caller, rang["id"]), call_record(caller, lost["id"])
    assert found["sid"] == twilio.calls[0]["sid"] and found["status"] == "queued"
    assert missing["status"] == "failed"
    assert len(twilio.calls) == 1


@pytest.mark.parametrize("status", ["429", "503"])
def test_a_call_twilio_did_not_take_is_429_with_retry_after_and_the_key_stays_free(
    caller, twilio, status
):
    twilio.script_faults(status)
    busy = place(caller, f"call-busy-{status}")
    assert busy["statusCode"] == 429
    assert int(busy["headers"]["Retry-After"]) > 0
    assert twilio.calls == []
    placed = place(caller, f"call-busy-{status}")
    assert placed["statusCode"] == 201
    assert len(twilio.calls) == 1


def test_a_queued_call_callback_is_ignored_not_an_error(caller, twilio):
    placed = place(caller, "call-queued-cb")["json"]
    callback = twilio.calls[0]["status_callback"].removeprefix(EXECUTE_API)
    params = {"CallSid": placed["sid"], "CallStatus": "queued", "AccountSid": demo.ACCOUNT_SID}
    assert caller.webhook(callback, params)["statusCode"] == 200
    assert call_record(caller, placed["id"])["status"] == "queued"


def test_reconcile_never_takes_another_of_our_calls_for_an_unconfirmed_one(
    caller, twilio, impatient, frozen
):
    from tests.functional.conftest import run_schedule

    placed = place(caller, "call-clear")["json"]
    twilio.script_faults("500")  # the second never reached Twilio; the first is listed
    lost = place(caller, "call-lost-twin")["json"]
    assert lost["unconfirmed"] is True
    frozen.advance(121)
    run_schedule("reconcile_sending")
    missing = call_record(caller, lost["id"])
    assert missing["status"] == "failed" and missing["sid"] is None
    assert call_record(caller, placed["id"])["sid"] == placed["sid"]


def test_a_call_twilio_lists_only_after_reconcile_gave_up_is_settled_by_its_callbacks(
    caller, twilio, impatient, frozen
):
    from tests.functional.conftest import run_schedule

    twilio.set_faults(create_after=3600)
    twilio.script_faults("504-then-create")
    placed = place(caller, "call-listed-late")["json"]
    assert placed["unconfirmed"] is True
    frozen.advance(121)
    run_schedule("reconcile_sending")
    assert call_record(caller, placed["id"])["status"] == "failed"  # not_placed, as far as seen
    twilio.run_pending_creates()  # Twilio had it after all: it rings, and calls back
    (call,) = twilio.calls
    callback = call["status_callback"].removeprefix(EXECUTE_API)
    params = {"CallSid": call["sid"], "CallStatus": "completed", "AccountSid": demo.ACCOUNT_SID}
    assert caller.webhook(callback, params)["statusCode"] == 200
    record = call_record(caller, placed["id"])
    assert (record["status"], record["sid"]) == ("completed", call["sid"])
