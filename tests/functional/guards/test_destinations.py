"""One destination policy, everywhere a number is reached: the API, broadcasts, forwarding,
notifications and the twimlets, through real events, the moto server and the local Twilio."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

import pytest

from chalicelib.aws import parameters
from devkit import demo
from devkit.phone import InProcess, Phone
from tests.functional.conftest import EXECUTE_API

TO = "+15105551212"
JAMAICA = "+18765550123"
PREMIUM = "+19005550123"
LONDON = "+442071838750"
CALL = {
    "CallSid": "CA" + "d" * 32,
    "AccountSid": demo.ACCOUNT_SID,
    "From": TO,
    "Caller": TO,
    "To": demo.NUMBER,
    "Called": demo.NUMBER,
    "CallStatus": "in-progress",
    "Direction": "inbound",
}
APOLOGY = "Sorry, this call cannot be connected."


def set_policy(ssm: Any, *, allowed: str | None = None, blocked: str | None = None) -> None:
    values = {}
    if allowed is not None:
        values["outbound/allowed_prefixes"] = (allowed, "String")
    if blocked is not None:
        values["outbound/blocked_prefixes"] = (blocked, "String")
    demo.put_parameters(ssm, demo.SSM_PATH, values)
    parameters.reset()


def refusals(log_lines: Any) -> list[dict[str, Any]]:
    return [line for line in log_lines() if line["message"] == "destination refused"]


def error(response: dict[str, Any]) -> tuple[int, str, str]:
    body = response["json"]["error"]
    return response["statusCode"], body["field"], body.get("reason")


# --- the API -------------------------------------------------------------------------------


def test_messages_and_calls_refuse_blocked_and_unlisted_destinations(
    caller, ssm, twilio, log_lines
):
    for path, extra in (("/messages", {"body": "hi"}), ("/calls", {})):
        for number, reason in ((JAMAICA, "blocked_prefix"), (PREMIUM, "blocked_prefix")):
            response = caller.api(path, {"to": number, **extra})
            assert error(response) == (400, "to", reason)
            assert "outbound/allowed_prefixes" in response["json"]["error"]["message"]
        assert error(caller.api(path, {"to": LONDON, **extra})) == (
            400,
            "to",
            "not_allowed_prefix",
        )
    assert twilio.requests == []
    lines = refusals(log_lines)
    assert len(lines) == 6
    assert lines[0]["number"] == "+*******0123"
    assert lines[0]["rule"] == "outbound/blocked_prefixes +1876"
    assert "8765550123" not in str(lines)
    # The owner allows Jamaica back with a more specific allowed prefix; 900 stays blocked.
    set_policy(ssm, allowed="+1,+1876")
    assert caller.api("/messages", {"to": JAMAICA, "body": "hi"})["statusCode"] == 201
    assert caller.api("/calls", {"to": JAMAICA})["statusCode"] == 201
    assert error(caller.api("/calls", {"to": PREMIUM})) == (400, "to", "blocked_prefix")


def test_calls_check_their_twiml(caller, twilio):
    blocked = f"<Response><Dial><Number>{TO}</Number><Number>{JAMAICA}</Number></Dial></Response>"
    assert error(caller.api("/calls", {"to": TO, "twiml": blocked})) == (
        400,
        "twiml",
        "blocked_prefix",
    )
    foreign = f'<Response><Sms to="{LONDON}">hi</Sms></Response>'
    assert error(caller.api("/calls", {"to": TO, "twiml": foreign})) == (
        400,
        "twiml",
        "not_allowed_prefix",
    )
    sip = "<Response><Dial><Sip>sip:alice@example.com</Sip></Dial></Response>"
    assert error(caller.api("/calls", {"to": TO, "twiml": sip})) == (
        400,
        "twiml",
        "unchecked_destination",
    )
    assert error(caller.api("/calls", {"to": TO, "twiml": "<Response><Dial>"})) == (
        400,
        "twiml",
        "invalid_twiml",
    )
    redirect = f"<Response><Redirect>{EXECUTE_API}/twimlets/findme?PhoneNumbers%5B%5D="
    redirect += f"{quote(PREMIUM)}</Redirect></Response>"
    assert error(caller.api("/calls", {"to": TO, "twiml": redirect})) == (
        400,
        "twiml",
        "blocked_prefix",
    )
    assert twilio.calls == []
    fine = f"<Response><Dial>{TO}</Dial></Response>"
    assert caller.api("/calls", {"to": TO, "twiml": fine})["statusCode"] == 201
    assert caller.api("/calls", {"to": TO, "say": f"Call {JAMAICA}"})["statusCode"] == 201
    assert [call["twiml"] is not None for call in twilio.calls] == [True, True]


def test_calls_check_urls_to_this_apps_twimlets(caller, twilio):
    forward = f"{EXECUTE_API}/twimlets/forward?PhoneNumber="
    assert error(caller.api("/calls", {"to": TO, "url": forward + quote(JAMAICA)})) == (
        400,
        "url",
        "blocked_prefix",
    )
    custom = "https://voice.example.com/twimlets/simulring?PhoneNumbers%5B%5D=%2B15105550001"
    custom += "&PhoneNumbers%5B%5D=%2B442071838750"
    assert error(caller.api("/calls", {"to": TO, "url": custom})) == (
        400,
        "url",
        "not_allowed_prefix",
    )
    assert twilio.calls == []
    assert caller.api("/calls", {"to": TO, "url": forward + quote(TO)})["statusCode"] == 201
    # Another server's TwiML cannot be read from here: the call is placed.
    elsewhere = "https://example.org/twiml?PhoneNumber=" + quote(JAMAICA)
    assert caller.api("/calls", {"to": TO, "url": elsewhere})["statusCode"] == 201
    assert len(twilio.calls) == 2


def test_a_broadcast_rejects_refused_recipients(caller, twilio, jobs, log_lines):
    payload = {"to": [TO, JAMAICA, LONDON, "+15105550002", PREMIUM], "body": "Sale today"}
    response = caller.api("/broadcasts", payload)
    assert response["statusCode"] == 202
    data = response["json"]
    assert data["count"] == 2
    assert sorted(data["rejected"], key=lambda r: r["to"]) == [
        {"to": JAMAICA, "reason": "blocked_prefix"},
        {"to": PREMIUM, "reason": "blocked_prefix"},
        {"to": LONDON, "reason": "not_allowed_prefix"},
    ]
    jobs.drain()
    assert sorted(m["to"] for m in twilio.messages) == ["+15105550002", TO]
    assert {line["where"] for line in refusals(log_lines)} == {"broadcast"}


# --- SMS forwarding and notifications ---------------------------------------------------------


def test_inbound_forwarding_skips_refused_targets(caller, ssm, twilio, jobs, log_lines):
    demo.put_parameters(
        ssm, demo.SSM_PATH, {"sms/forward_to": (f"{JAMAICA}, +15105559999", "String")}
    )
    params = {
        "MessageSid": "SM" + "e" * 32,
        "AccountSid": demo.ACCOUNT_SID,
        "From": TO,
        "To": demo.NUMBER,
        "Body": "Open today?",
        "NumMedia": "0",
    }
    assert caller.webhook("/sms", params)["statusCode"] == 200
    jobs.drain()
    assert [m["to"] for m in twilio.messages] == ["+15105559999"]
    (line,) = refusals(log_lines)
    assert (line["where"], line["number"], line["reason"]) == (
        "sms forwarding",
        "+*******0123",
        "blocked_prefix",
    )


def test_a_refused_notification_is_dropped_not_retried(app, jobs, twilio, log_lines):
    phone = Phone(InProcess(app, demo.AUTH_TOKEN), caller="+19165550123")
    for number in (JAMAICA, "+16175550100"):
        url = f"{EXECUTE_API}/twimlets/voicemail?Transcribe=false&NotifySms={quote(number)}"
        phone.call(url)
    received, failed = jobs.poll_once()
    assert (received, failed) == (2, 0)
    jobs.drain()
    assert [m["to"] for m in twilio.messages] == ["+16175550100"]
    (line,) = refusals(log_lines)
    assert (line["where"], line["reason"]) == ("notification", "blocked_prefix")


# --- twimlets ----------------------------------------------------------------------------


def document(response: dict[str, Any]) -> ET.Element:
    assert response["statusCode"] == 200, response
    return ET.fromstring(response["body"].encode())


def verbs(root: ET.Element) -> list[tuple[str, str]]:
    return [(e.tag, (e.text or "").strip()) for e in root]


@pytest.mark.parametrize("twimlet", ["forward", "callme"])
def test_forward_and_callme_apologise_for_a_refused_number(caller, log_lines, twimlet):
    path = f"/twimlets/{twimlet}?PhoneNumber={quote(JAMAICA)}"
    assert verbs(document(caller.webhook(path, CALL))) == [("Say", APOLOGY), ("Hangup", "")]
    fail = "&FailUrl=" + quote("https://example.org/vm", safe="")
    assert verbs(document(caller.webhook(path + fail, CALL))) == [
        ("Say", APOLOGY),
        ("Redirect", "https://example.org/vm"),
    ]
    unreadable = document(caller.webhook(f"/twimlets/{twimlet}?PhoneNumber=call+me", CALL))
    assert verbs(unreadable) == [("Say", APOLOGY), ("Hangup", "")]
    reasons = [(line["where"], line["reason"]) for line in refusals(log_lines)]
    assert reasons == [(f"twimlet {twimlet}", "blocked_prefix")] * 2 + [
        (f"twimlet {twimlet}", "not_e164")
    ]


def test_forward_dials_a_written_number_as_e164(caller):
    root = document(caller.webhook("/twimlets/forward?PhoneNumber=(510)+555-1212", CALL))
    assert root.find("Dial").text == TO


def test_simulring_and_findme_dial_the_rest(caller, log_lines):
    numbers = "&".join(
        f"PhoneNumbers%5B%5D={quote(n)}" for n in (JAMAICA, "+15105550001", LONDON, "5105550002")
    )
    simulring = document(caller.webhook(f"/twimlets/simulring?{numbers}", CALL))
    assert [n.text for n in simulring.iter("Number")] == ["+15105550001", "+15105550002"]
    findme = document(caller.webhook(f"/twimlets/findme?{numbers}", CALL))
    assert [n.text for n in findme.iter("Number")] == ["+15105550001"]
    action = findme.find("Dial").get("action")
    assert "PhoneNumbers%5B%5D=%2B15105550002" in action
    assert "876" not in action and "44207" not in action
    assert len(refusals(log_lines)) == 4


@pytest.mark.parametrize("twimlet", ["simulring", "findme"])
def test_simulring_and_findme_with_every_number_refused(caller, twimlet):
    path = f"/twimlets/{twimlet}?PhoneNumbers%5B%5D={quote(JAMAICA)}"
    assert verbs(document(caller.webhook(path, CALL))) == [("Hangup", "")]
    response = caller.webhook(path + "&FailUrl=https%3A%2F%2Fexample.org%2Fvm", CALL)
    assert response["statusCode"] == 302
    assert {k.lower(): v for k, v in response["headers"].items()}["location"] == (
        "https://example.org/vm"
    )


def test_conference_texts_only_the_moderators_the_policy_allows(caller, ssm, jobs, twilio):
    query = (
        f"Moderators%5B%5D={quote(JAMAICA)}&Moderators%5B%5D=212-555-0147"
        "&EnableSmsNotifications=1&Name=room"
    )
    root = document(
        caller.webhook(
            f"/twimlets/conference?{query}", {**CALL, "From": "+13105550110", "Caller": "+1310"}
        )
    )
    assert root.find("Dial/Conference").text == "room"
    jobs.drain()
    assert [m["to"] for m in twilio.messages] == ["+12125550147"]


def test_the_owners_policy_reaches_the_twimlets(caller, ssm):
    set_policy(ssm, allowed="+1,+1876", blocked="default,+1510")
    root = document(caller.webhook(f"/twimlets/forward?PhoneNumber={quote(JAMAICA)}", CALL))
    assert root.find("Dial").text == JAMAICA
    root = document(caller.webhook(f"/twimlets/forward?PhoneNumber={quote(TO)}", CALL))
    assert verbs(root)[0] == ("Say", APOLOGY)
