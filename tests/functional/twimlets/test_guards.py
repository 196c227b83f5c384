"""What a caller or a URL can make the twimlets do (docs/guards.md), through signed events.

Each guard here is a deliberate departure from the twimlets.com originals.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.aws import parameters
from devkit import demo
from devkit.phone import InProcess, Phone
from tests.functional.conftest import EXECUTE_API
from tests.functional.twimlets import test_twimlets
from tests.functional.twimlets.test_twimlets import (
    CALL,
    FAILED,
    MUSIC,
    PRIVATE,
    SENDER,
    _watch,
    header,
    sent_emails,
    twiml,
)

music = test_twimlets.music  # the buckets in the moto server (a fixture)
REJECTED = "Sorry, you are calling from a restricted number. Good bye."
PROMPT = "Please enter your conference pass code"
GOODBYE = "Sorry, that pass code is not correct. Good bye."


def phone(app: Any, **script: Any) -> Phone:
    return Phone(InProcess(app, demo.AUTH_TOKEN), **script)


def put(ssm: Any, **values: str) -> None:
    demo.put_parameters(
        ssm, demo.SSM_PATH, {name.replace("__", "/"): (v, "String") for name, v in values.items()}
    )


def messages(log_lines: Any, start: str) -> list[dict[str, Any]]:
    return [line for line in log_lines() if line["message"].startswith(start)]


# Caller ID lists: E.164, compared exactly.


def test_forward_a_dropped_country_code_matches_nobody(caller, log_lines):
    # The example: "+51 05551212" is a Peruvian number, not +1 510-555-1212.
    path = "/twimlets/forward?PhoneNumber=%2B12065550142&AllowedCallers%5B%5D=%2B51%2005551212"
    response = caller.webhook(path, CALL)
    assert response["body"].endswith(f"<Response><Say>{REJECTED}</Say></Response>")
    (refused,) = messages(log_lines, "twimlet forward refused")
    assert refused["caller"] == "+*******1212"
    assert "5105551212" not in str(log_lines())
    path = "/twimlets/forward?PhoneNumber=%2B12065550142&AllowedCallers%5B%5D=%2B1%20510-555-1212"
    assert twiml(caller.webhook(path, CALL)).find("Dial").text == "+12065550142"


def test_conference_a_blank_moderator_entry_makes_nobody_a_moderator(caller):
    path = "/twimlets/conference?Name=r&Moderators%5B%5D=&Moderators%5B%5D=%2B12125550147"
    anonymous = {**CALL, "From": "anonymous", "Caller": "anonymous"}
    document = twiml(caller.webhook(path, anonymous))
    assert ET.tostring(document.find("Dial"), encoding="unicode") == (
        '<Dial><Conference startConferenceOnEnter="false">r</Conference></Dial>'
    )
    host = {**CALL, "From": "+12125550147", "Caller": "+12125550147"}
    room = twiml(caller.webhook(path, host)).find("Dial/Conference")
    assert room.get("startConferenceOnEnter") == "true"


def test_conference_moderators_and_alerts_are_capped(app, jobs, twilio, log_lines):
    listed = "&".join(f"Moderators%5B%5D=%2B1212555{n:04d}" for n in range(12))
    url = f"{EXECUTE_API}/twimlets/conference?Name=r&EnableSmsNotifications=1&{listed}"
    call = phone(app, caller="+13105550110").call(url)
    assert call.verbs()[-1] == ("Conference", "r")
    jobs.drain()
    assert sorted(m["to"] for m in twilio.messages) == [f"+1212555{n:04d}" for n in range(10)]
    (capped,) = messages(log_lines, "conference moderators over the cap")
    assert (capped["count"], capped["cap"]) == (12, 10)
    # The eleventh listed is no moderator.
    late = phone(app, caller="+12125550010").call(url)
    room = next(step for step in late.steps if step.verb == "Conference")
    assert room.attrs["startConferenceOnEnter"] == "false"


# Conference pass codes: three tries, then a polite hang-up.


def test_conference_pass_code_three_tries_then_good_bye(app, log_lines):
    url = f"{EXECUTE_API}/twimlets/conference?Password=4321&Name=standup"
    call = phone(app, digits=["1111", None, "3333", "4321"]).call(url)
    assert call.verbs() == [
        ("Gather", ""),
        ("Say", PROMPT),
        ("Pressed", "1111"),
        ("Gather", ""),
        ("Say", PROMPT),
        ("No input", ""),
        ("Redirect", f"{url}&PassCodeAttempts=2"),
        ("Gather", ""),
        ("Say", PROMPT),
        ("Pressed", "3333"),
        ("Say", GOODBYE),
        ("Hangup", ""),
    ]
    assert [r.url for r in call.requests] == [
        url,
        f"{url}&PassCodeAttempts=1",
        f"{url}&PassCodeAttempts=2",
        f"{url}&PassCodeAttempts=3",
    ]
    (refused,) = messages(log_lines, "conference refused: wrong pass code")
    assert (refused["attempts"], refused["caller"]) == (3, "+*******1212")
    third = phone(app, digits=["1111", "2222", "4321"]).call(url)
    assert third.verbs()[-2:] == [
        ("Say", "You are now entering the conference line."),
        ("Conference", "standup"),
    ]


def test_conference_prompt_after_a_get_carries_no_twilio_fields(caller):
    # Twilio puts its fields in the query of a GET: they stay out of the prompt's callback.
    query = "Password=4321&Name=r&" + urlencode({**CALL, "Digits": "1111"})
    document = twiml(caller.webhook(f"/twimlets/conference?{query}", method="GET"))
    action = document.find("Gather").get("action")
    assert action == f"{EXECUTE_API}/twimlets/conference?Password=4321&Name=r&PassCodeAttempts=1"
    assert document.find("Redirect").text == action


# echo: off unless the owner turns it on.


@pytest.mark.parametrize("setting", [None, "false", "0"])
def test_echo_is_off_unless_enabled(caller, ssm, log_lines, setting):
    if setting is not None:
        put(ssm, twimlets__echo_enabled=setting)
    path = (
        "/twimlets/echo?Twiml=%3CResponse%3E%3CDial%3E%2B19005550100%3C%2FDial%3E%3C%2FResponse%3E"
    )
    response = caller.webhook(path, CALL)
    assert response["statusCode"] == 404
    assert header(response, "Content-Type").startswith("text/plain")
    assert "twimlets/echo_enabled" in response["body"]
    assert "Dial" not in response["body"]
    assert messages(log_lines, "twimlet echo refused")
    assert caller.webhook(path, CALL, signature="")["statusCode"] == 403


def test_echo_when_enabled(caller, ssm):
    put(ssm, twimlets__echo_enabled="true")
    response = caller.webhook("/twimlets/echo?Twiml=%3CResponse%3E%3CReject%2F%3E%3C%2FResponse%3E")
    assert response["body"] == "<Response><Reject/></Response>"


# holdmusic: only the buckets the owner allowed.


def test_holdmusic_by_default_lists_only_twilios_buckets(caller, music, ssm, log_lines):
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/twimlets/holdmusic_buckets")
    signed, unsigned = _watch(signed=True), _watch(signed=False)
    document = twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={PRIVATE}", method="GET"))
    assert [(e.tag, e.text) for e in document] == [("Say", FAILED)]
    assert signed == []  # the function's role lists nothing for a URL
    (refused,) = messages(log_lines, "holdmusic refused: bucket not allowed")
    assert refused["bucket"] == PRIVATE
    document = twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={MUSIC}", method="GET"))
    assert document.find("Play") is not None
    assert len(unsigned) == 1


def test_holdmusic_sends_the_expected_owner_and_refuses_unlisted_buckets(caller, music, ssm):
    put(ssm, twimlets__holdmusic_buckets=f"{PRIVATE}:123456789012")
    seen = _watch(signed=True)
    caller.webhook(f"/twimlets/holdmusic?Bucket={PRIVATE}", method="GET")
    assert [r.headers.get("x-amz-expected-bucket-owner") for r in seen] == [b"123456789012"]
    # (The moto server ignores the header: S3 itself answers 403 to another owner's bucket.)
    # The setting replaces the default: Twilio's buckets are no longer listed.
    document = twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={MUSIC}", method="GET"))
    assert [(e.tag, e.text) for e in document] == [("Say", FAILED)]


# voicemail: e-mail only to recipients the owner allowed.


@pytest.fixture
def sender(ssm: Any) -> Any:
    import boto3

    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    put(ssm, voicemail__from_email=SENDER)
    return ssm


@pytest.mark.parametrize(
    ("setting", "email", "sent"),
    [
        (None, "office@example.com", True),  # the sender's own domain, by default
        (None, "victim@elsewhere.test", False),
        (None, "office@mail.example.com", False),
        ("ops@example.org", "ops@example.org", True),
        ("ops@example.org", "office@example.com", False),  # the setting replaces the default
        ("@example.org", "anyone@example.org", True),
    ],
)
def test_voicemail_emails_only_allowed_recipients(
    app, sender, jobs, moto_url, log_lines, setting, email, sent
):
    if setting is not None:
        put(sender, twimlets__voicemail_recipients=setting)
    url = f"{EXECUTE_API}/twimlets/voicemail?Email={email.replace('@', '%40')}&Transcribe=false"
    call = phone(app).call(url)
    assert call.verbs()[-2:] == [("Say", "Thanks. Good bye."), ("Hangup", "")]  # unaffected
    jobs.drain()
    delivered = [e["destinations"]["ToAddresses"] for e in sent_emails(moto_url)]
    assert delivered == ([[email]] if sent else [])
    refused = messages(log_lines, "voicemail e-mail refused")
    if sent:
        assert refused == []
    else:
        assert [line["email"] for line in refused] == ["***@" + email.split("@")[1]]
        assert email.split("@")[0] not in str(refused)


def test_voicemail_queued_then_disallowed_is_dropped_by_the_worker(
    app, sender, jobs, moto_url, log_lines
):
    url = f"{EXECUTE_API}/twimlets/voicemail?Email=office%40example.com&Transcribe=false"
    phone(app).call(url)
    put(sender, twimlets__voicemail_recipients="@example.org")
    parameters.reset()  # the worker reads the parameter as changed (its cache would expire)
    jobs.drain()
    assert sent_emails(moto_url) == []
    assert messages(log_lines, "voicemail e-mail refused")
