"""The fake Twilio REST API, driven over HTTP by the real twilio-python client."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from devkit.fake_twilio import FakeTwilio, RecordedRequest
from devkit.twilio_serve import main

# Obviously fake credentials: nothing here is, or looks like, a real secret.
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-0000"
KEY_SID = "SK" + "0" * 32
KEY_SECRET = "fake-key-secret-0000"
OTHER_ACCOUNT_SID = "AC" + "1" * 32
OTHER_AUTH_TOKEN = "fake-auth-token-1111"
OTHER_KEY_SID = "SK" + "1" * 32
OTHER_KEY_SECRET = "fake-key-secret-1111"
UNKNOWN_ACCOUNT_SID = "AC" + "9" * 32
SERVICE_SID = "MG" + "0" * 32

FROM = "+15005550006"  # Twilio's magic "valid sender"
OTHER_FROM = "+15017250604"
TO = "+15558675310"
OTHER_TO = "+447700900123"

RFC_2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
ERROR_KEYS = {"code", "message", "more_info", "status"}


@pytest.fixture(scope="module")
def fake() -> Any:
    accounts = {ACCOUNT_SID: AUTH_TOKEN, OTHER_ACCOUNT_SID: OTHER_AUTH_TOKEN}
    keys = {
        KEY_SID: (KEY_SECRET, ACCOUNT_SID),
        OTHER_KEY_SID: (OTHER_KEY_SECRET, OTHER_ACCOUNT_SID),
    }
    with FakeTwilio(accounts=accounts, api_keys=keys) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    # A region or edge would rewrite the fake's host into a twilio.com hostname.
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    fake.reset()
    fake.latency = 0.0


def make_client(
    fake: FakeTwilio,
    username: str = ACCOUNT_SID,
    password: str = AUTH_TOKEN,
    account_sid: str | None = None,
) -> Client:
    client = Client(username, password, account_sid)
    client.api.base_url = fake.url
    return client


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    return make_client(fake)


def api_url(fake: FakeTwilio, resource: str, account_sid: str = ACCOUNT_SID) -> str:
    return f"{fake.url}/2010-04-01/Accounts/{account_sid}/{resource}"


def raw_get(fake: FakeTwilio, resource: str, **params: Any) -> requests.Response:
    return requests.get(
        api_url(fake, resource), params=params, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
    )


def assert_twilio_error(exc: TwilioRestException, status: int, code: int, message: str) -> None:
    assert (exc.status, exc.code) == (status, code)
    assert exc.msg.endswith(f": {message}"), exc.msg


# Messages


def test_create_message_from_number(fake: FakeTwilio, client: Client) -> None:
    message = client.messages.create(
        to=TO, from_=FROM, body="Hello", status_callback="https://example.com/status"
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.to, message.from_, message.body) == (TO, FROM, "Hello")
    assert message.status == "queued"
    assert message.messaging_service_sid is None
    assert (message.num_segments, message.num_media) == ("1", "0")
    assert message.direction == "outbound-api"
    assert message.date_sent is None and message.price is None and message.error_code is None
    stored = fake.messages
    assert len(stored) == 1
    assert stored[0]["sid"] == message.sid
    assert stored[0]["status_callback"] == "https://example.com/status"


def test_message_json_is_shaped_like_twilios(fake: FakeTwilio, client: Client) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="Hello").sid

    response = raw_get(fake, f"Messages/{sid}.json")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {
        "sid",
        "account_sid",
        "to",
        "from",
        "messaging_service_sid",
        "body",
        "status",
        "num_segments",
        "num_media",
        "direction",
        "api_version",
        "price",
        "price_unit",
        "error_code",
        "error_message",
        "date_created",
        "date_updated",
        "date_sent",
        "uri",
        "subresource_uris",
    }
    assert data["account_sid"] == ACCOUNT_SID
    assert data["api_version"] == "2010-04-01"
    assert data["price_unit"] == "USD"
    assert RFC_2822.match(data["date_created"]) and RFC_2822.match(data["date_updated"])
    assert data["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"
    media = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json"
    assert data["subresource_uris"] == {"media": media}


def test_create_message_with_messaging_service(fake: FakeTwilio, client: Client) -> None:
    message = client.messages.create(to=TO, messaging_service_sid=SERVICE_SID, body="Hi")

    assert message.from_ is None
    assert message.messaging_service_sid == SERVICE_SID
    assert message.status == "accepted"


def test_create_media_only_message(fake: FakeTwilio, client: Client) -> None:
    media = ["https://example.com/a.png", "https://example.com/b.png"]

    message = client.messages.create(to=TO, from_=FROM, media_url=media)

    assert (message.body, message.num_media, message.num_segments) == ("", "2", "1")
    assert [value for name, value in fake.requests[-1].params if name == "MediaUrl"] == media


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),  # GSM-7 extension characters cost two septets
        ("€" * 81, "2"),
        ("✓" * 70, "1"),  # anything outside GSM-7 makes the whole message UCS-2
        ("✓" * 71, "2"),
    ],
)
def test_num_segments(client: Client, body: str, segments: str) -> None:
    assert client.messages.create(to=TO, from_=FROM, body=body).num_segments == segments


def test_form_keeps_utf8_repeated_and_blank_values(fake: FakeTwilio) -> None:
    form = [
        ("To", TO),
        ("From", FROM),
        ("Body", "héllo ✓ 👋"),
        ("MediaUrl", "https://example.com/1.png"),
        ("MediaUrl", "https://example.com/2.png"),
        ("StatusCallback", ""),
    ]

    response = requests.post(
        api_url(fake, "Messages.json"), data=form, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
    )

    assert response.status_code == 201
    assert response.json()["body"] == "héllo ✓ 👋"
    assert response.json()["num_media"] == "2"
    assert fake.requests[-1].params == form
    assert fake.messages[0]["status_callback"] is None  # blank means absent, as on Twilio


def test_fetch_message(client: Client) -> None:
    created = client.messages.create(to=TO, from_=FROM, body="Hello")

    fetched = client.messages(created.sid).fetch()

    assert (fetched.sid, fetched.body, fetched.status) == (created.sid, "Hello", "queued")


def test_fetch_unknown_message_is_404(client: Client) -> None:
    sid = "SM" + "f" * 32

    with pytest.raises(TwilioRestException) as caught:
        client.messages(sid).fetch()

    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"
    assert_twilio_error(caught.value, 404, 20404, f"The requested resource {path} was not found")


def test_messages_are_per_account(fake: FakeTwilio, client: Client) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="mine").sid
    other = make_client(fake, OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN)

    with pytest.raises(TwilioRestException) as caught:
        other.messages(sid).fetch()

    assert caught.value.status == 404
    assert other.messages.list() == []


def test_list_filters_newest_first(client: Client) -> None:
    first = client.messages.create(to=TO, from_=FROM, body="1").sid
    second = client.messages.create(to=OTHER_TO, from_=FROM, body="2").sid
    third = client.messages.create(to=TO, from_=OTHER_FROM, body="3").sid

    assert [m.sid for m in client.messages.list()] == [third, second, first]
    assert [m.sid for m in client.messages.list(to=TO)] == [third, first]
    assert [m.sid for m in client.messages.list(from_=FROM)] == [second, first]
    assert [m.sid for m in client.messages.list(to=TO, from_=FROM)] == [first]
    assert client.messages.list(to="+15550000000") == []


def test_list_date_sent_filters(fake: FakeTwilio, client: Client) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="today").sid
    now = datetime.now(UTC)
    today = now.date().isoformat()

    # Datetimes (what twilio-python sends) compare to the second, inclusively.
    assert [m.sid for m in client.messages.list(date_sent_after=now - timedelta(minutes=5))] == [
        sid
    ]
    assert client.messages.list(date_sent_after=now + timedelta(minutes=5)) == []
    assert client.messages.list(date_sent_before=now - timedelta(minutes=5)) == []
    assert [m.sid for m in client.messages.list(date_sent_before=now + timedelta(minutes=5))] == [
        sid
    ]
    # YYYY-MM-DD compares days: DateSent is that day, DateSent>/< include it.
    assert [m.sid for m in client.messages.list(date_sent=today)] == [sid]
    assert [m.sid for m in client.messages.list(date_sent_after=today)] == [sid]
    assert [m.sid for m in client.messages.list(date_sent_before=today)] == [sid]
    assert client.messages.list(date_sent="2001-01-01") == []

    response = raw_get(fake, "Messages.json", DateSent="yesterday")
    assert response.status_code == 400
    assert response.json()["code"] == 20001


def test_list_page_shape(fake: FakeTwilio, client: Client) -> None:
    sids = [client.messages.create(to=TO, from_=FROM, body=str(i)).sid for i in range(3)]
    keys = {
        "messages",
        "page",
        "page_size",
        "first_page_uri",
        "next_page_uri",
        "previous_page_uri",
        "uri",
        "start",
        "end",
    }

    first = raw_get(fake, "Messages.json", To=TO, PageSize=2).json()

    assert set(first) == keys
    assert [m["sid"] for m in first["messages"]] == sids[:0:-1]
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 2, 0, 1)
    assert first["previous_page_uri"] is None
    assert first["first_page_uri"].startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?")
    assert "To=%2B15558675310" in first["next_page_uri"]
    assert "Page=1" in first["next_page_uri"] and f"PageToken=PA{sids[1]}" in first["next_page_uri"]

    second = requests.get(
        fake.url + first["next_page_uri"], auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
    ).json()

    assert [m["sid"] for m in second["messages"]] == [sids[0]]
    assert (second["page"], second["start"], second["end"]) == (1, 2, 2)
    assert second["next_page_uri"] is None
    assert "Page=0" in second["previous_page_uri"]


def test_stream_follows_next_page_uri(fake: FakeTwilio, client: Client) -> None:
    sids = [client.messages.create(to=TO, from_=FROM, body=str(i)).sid for i in range(5)]
    client.messages.create(to=OTHER_TO, from_=FROM, body="filtered out")
    before = len(fake.requests)

    streamed = [message.sid for message in client.messages.stream(to=TO, page_size=2)]

    assert streamed == sids[::-1]
    pages = fake.requests[before:]
    assert [dict(request.params).get("Page", "0") for request in pages] == ["0", "1", "2"]
    assert all(("To", TO) in request.params for request in pages)


def test_list_with_limit_across_pages(client: Client) -> None:
    for i in range(5):
        client.messages.create(to=TO, from_=FROM, body=str(i))

    listed = client.messages.list(limit=3, page_size=2)

    assert [message.body for message in listed] == ["4", "3", "2"]


def test_invalid_page_size_is_400(fake: FakeTwilio) -> None:
    response = raw_get(fake, "Messages.json", PageSize=0)

    assert response.status_code == 400
    assert response.json()["code"] == 20001


MESSAGE_ERRORS = [
    pytest.param(
        {"to": "", "from_": FROM, "body": "x"},
        21604,
        "A 'To' phone number is required.",
        id="no-to",
    ),
    pytest.param(
        {"to": TO, "body": "x"}, 21603, "A 'From' phone number is required.", id="no-from"
    ),
    pytest.param(
        {"to": "5558675310", "from_": FROM, "body": "x"},
        21211,
        "The 'To' number 5558675310 is not a valid phone number.",
        id="to-not-e164",
    ),
    pytest.param(
        {"to": TO, "from_": "+0123", "body": "x"},
        21212,
        "The 'From' number +0123 is not a valid phone number, shortcode, or alphanumeric "
        "sender ID.",
        id="from-not-e164",
    ),
    pytest.param(
        {"to": TO, "messaging_service_sid": "MG123", "body": "x"},
        21701,
        "The Messaging Service Sid MG123 is invalid.",
        id="bad-service-sid",
    ),
    pytest.param({"to": TO, "from_": FROM}, 21602, "Message body is required.", id="no-body"),
    pytest.param(
        {"to": TO, "from_": FROM, "body": ""}, 21602, "Message body is required.", id="blank-body"
    ),
    pytest.param(
        {"to": TO, "from_": FROM, "body": "x" * 1601},
        21617,
        "The concatenated message body exceeds the 1600 character limit.",
        id="body-too-long",
    ),
    pytest.param(
        {"to": TO, "from_": FROM, "media_url": ["ftp://example.com/a.png"]},
        21620,
        "Invalid media URL(s)",
        id="bad-media-url",
    ),
    # Twilio's magic test numbers.
    pytest.param(
        {"to": "+15005550001", "from_": FROM, "body": "x"},
        21211,
        "The 'To' number +15005550001 is not a valid phone number.",
        id="magic-to-invalid",
    ),
    pytest.param(
        {"to": "+15005550002", "from_": FROM, "body": "x"},
        21612,
        "The 'To' phone number: +15005550002, is not currently reachable using the 'From' "
        "phone number: +15005550006 via SMS.",
        id="magic-to-unreachable",
    ),
    pytest.param(
        {"to": "+15005550003", "from_": FROM, "body": "x"},
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' "
        "number: +15005550003.",
        id="magic-to-no-permission",
    ),
    pytest.param(
        {"to": "+15005550004", "from_": FROM, "body": "x"},
        21610,
        "Attempt to send to unsubscribed recipient",
        id="magic-to-unsubscribed",
    ),
    pytest.param(
        {"to": "+15005550009", "from_": FROM, "body": "x"},
        21614,
        "'To' number is not a valid mobile number",
        id="magic-to-not-mobile",
    ),
    pytest.param(
        {"to": TO, "from_": "+15005550001", "body": "x"},
        21212,
        "The 'From' number +15005550001 is not a valid phone number, shortcode, or "
        "alphanumeric sender ID.",
        id="magic-from-invalid",
    ),
    pytest.param(
        {"to": TO, "from_": "+15005550007", "body": "x"},
        21606,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number "
        "for this destination/account.",
        id="magic-from-not-owned",
    ),
    pytest.param(
        {"to": TO, "from_": "+15005550008", "body": "x"},
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
        id="magic-from-queue-full",
    ),
]


@pytest.mark.parametrize(("options", "code", "message"), MESSAGE_ERRORS)
def test_message_validation(
    fake: FakeTwilio, client: Client, options: dict[str, Any], code: int, message: str
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(**options)

    assert_twilio_error(caught.value, 400, code, message)
    assert fake.messages == []
    assert fake.requests[-1].status == 400


@pytest.mark.parametrize("sender", ["12345", "Switchbrd", "whatsapp:+15005550006"])
def test_message_accepts_short_codes_sender_ids_and_whatsapp(client: Client, sender: str) -> None:
    assert client.messages.create(to=TO, from_=sender, body="x").from_ == sender


def test_error_body_is_twilios_json(fake: FakeTwilio) -> None:
    response = requests.post(
        api_url(fake, "Messages.json"),
        data={"From": FROM, "Body": "x"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "code": 21604,
        "message": "A 'To' phone number is required.",
        "more_info": "https://www.twilio.com/docs/errors/21604",
        "status": 400,
    }


# Calls


def test_create_call_with_url(fake: FakeTwilio, client: Client) -> None:
    call = client.calls.create(
        to=TO,
        from_=FROM,
        url="https://example.com/voice",
        method="GET",
        status_callback="https://example.com/status",
        status_callback_event=["initiated", "completed"],
        timeout=20,
    )

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    # twilio-python 9 names a call's From `_from` (a message's is `from_`).
    assert (call.to, call._from, call.status, call.direction) == (
        TO,
        FROM,
        "queued",
        "outbound-api",
    )
    assert (call.to_formatted, call.from_formatted) == ("(555) 867-5310", "(500) 555-0006")
    assert call.start_time is None and call.duration is None and call.parent_call_sid is None
    stored = fake.calls[0]
    assert stored["url"] == "https://example.com/voice"
    assert stored["twiml"] is None
    assert stored["method"] == "GET"
    assert stored["status_callback"] == "https://example.com/status"
    assert stored["status_callback_event"] == ["initiated", "completed"]
    assert stored["timeout"] == 20


def test_create_call_with_twiml_wins_over_url(fake: FakeTwilio, client: Client) -> None:
    twiml = "<Response><Say>Hello</Say></Response>"

    call = client.calls.create(to=TO, from_=FROM, twiml=twiml, url="https://example.com/voice")

    assert call.status == "queued"
    assert (fake.calls[0]["twiml"], fake.calls[0]["url"]) == (twiml, None)


@pytest.mark.parametrize("to", ["client:alice", "sip:bob@example.com", OTHER_TO])
def test_call_accepts_clients_sip_and_international(client: Client, to: str) -> None:
    call = client.calls.create(to=to, from_=FROM, url="https://example.com/voice")

    assert call.to_formatted == to


def test_call_json_is_shaped_like_twilios(fake: FakeTwilio, client: Client) -> None:
    sid = client.calls.create(to=TO, from_=FROM, url="https://example.com/voice").sid

    data = raw_get(fake, f"Calls/{sid}.json").json()

    expected = {"sid", "account_sid", "to", "from", "to_formatted", "from_formatted", "status"}
    expected |= {"direction", "api_version", "date_created", "date_updated", "start_time"}
    expected |= {"end_time", "duration", "price", "uri", "parent_call_sid", "answered_by"}
    expected |= {"caller_name", "subresource_uris"}
    assert expected <= set(data)
    assert not {"url", "twiml", "status_callback", "timeout"} & set(data)
    assert data["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
    assert RFC_2822.match(data["date_created"])


def test_fetch_call(client: Client) -> None:
    created = client.calls.create(to=TO, from_=FROM, url="https://example.com/voice")

    fetched = client.calls(created.sid).fetch()

    assert (fetched.sid, fetched.to, fetched.status) == (created.sid, TO, "queued")


def test_fetch_unknown_call_is_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.calls("CA" + "f" * 32).fetch()

    assert (caught.value.status, caught.value.code) == (404, 20404)


VOICE = "https://example.com/voice"
CALL_ERRORS = [
    pytest.param(
        {"to": "", "from_": FROM, "url": VOICE}, 21201, "No 'To' number is specified", id="no-to"
    ),
    pytest.param(
        {"to": TO, "from_": "", "url": VOICE}, 21213, "No 'From' number is specified", id="no-from"
    ),
    pytest.param({"to": TO, "from_": FROM}, 21205, "Url parameter is required.", id="no-url"),
    pytest.param(
        {"to": TO, "from_": FROM, "url": "ftp://example.com/voice"},
        21205,
        "Url is not a valid URL: ftp://example.com/voice",
        id="bad-url",
    ),
    pytest.param(
        {"to": "12345", "from_": FROM, "url": VOICE},
        21211,
        "Invalid 'To' Phone Number: 12345",
        id="to-not-e164",
    ),
    pytest.param(
        {"to": TO, "from_": "Switchbrd", "url": VOICE},
        21212,
        "Invalid 'From' Phone Number: Switchbrd",
        id="from-not-e164",
    ),
    pytest.param(
        {"to": TO, "from_": FROM, "twiml": "<Response>" + " " * 4000 + "</Response>"},
        32018,
        "Twiml size exceeded maximum allowed value of 4000 characters",
        id="twiml-too-long",
    ),
    pytest.param(
        {"to": "+15005550001", "from_": FROM, "url": VOICE},
        21217,
        "Phone number is not a valid phone number.",
        id="magic-to-invalid",
    ),
    pytest.param(
        {"to": "+15005550002", "from_": FROM, "url": VOICE},
        21214,
        "'To' phone number cannot be reached",
        id="magic-to-unreachable",
    ),
    pytest.param(
        {"to": "+15005550003", "from_": FROM, "url": VOICE},
        21215,
        "Account not authorized to call +15005550003. Perhaps you need to enable some "
        "international permissions",
        id="magic-to-no-permission",
    ),
    pytest.param(
        {"to": "+15005550004", "from_": FROM, "url": VOICE},
        21216,
        "Call blocked by Twilio blocklist",
        id="magic-to-blocked",
    ),
    pytest.param(
        {"to": TO, "from_": "+15005550001", "url": VOICE},
        21212,
        "Invalid 'From' Phone Number: +15005550001",
        id="magic-from-invalid",
    ),
]


@pytest.mark.parametrize(("options", "code", "message"), CALL_ERRORS)
def test_call_validation(
    fake: FakeTwilio, client: Client, options: dict[str, Any], code: int, message: str
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.calls.create(**options)

    assert_twilio_error(caught.value, 400, code, message)
    assert fake.calls == []


# Authentication and routing


def test_api_key_authenticates(fake: FakeTwilio) -> None:
    client = make_client(fake, KEY_SID, KEY_SECRET, ACCOUNT_SID)

    message = client.messages.create(to=TO, from_=FROM, body="via key")

    assert message.account_sid == ACCOUNT_SID
    assert fake.requests[-1].username == KEY_SID


@pytest.mark.parametrize(
    ("username", "password", "account_sid"),
    [
        pytest.param(ACCOUNT_SID, "wrong-token", None, id="wrong-token"),
        pytest.param(KEY_SID, "wrong-secret", ACCOUNT_SID, id="wrong-key-secret"),
        pytest.param(OTHER_KEY_SID, OTHER_KEY_SECRET, ACCOUNT_SID, id="key-of-other-account"),
        pytest.param(OTHER_ACCOUNT_SID, OTHER_AUTH_TOKEN, ACCOUNT_SID, id="other-account-token"),
        pytest.param(ACCOUNT_SID, AUTH_TOKEN, UNKNOWN_ACCOUNT_SID, id="unknown-account-in-path"),
        pytest.param(UNKNOWN_ACCOUNT_SID, AUTH_TOKEN, None, id="unknown-account"),
    ],
)
def test_bad_credentials_are_401(
    fake: FakeTwilio, username: str, password: str, account_sid: str | None
) -> None:
    client = make_client(fake, username, password, account_sid)

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_=FROM, body="x")

    assert_twilio_error(caught.value, 401, 20003, "Authenticate")
    assert fake.messages == []
    assert fake.requests[-1].status == 401


def test_missing_credentials_challenge(fake: FakeTwilio) -> None:
    response = requests.get(api_url(fake, "Messages.json"), timeout=5)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert fake.requests[-1].username is None


def test_unknown_path_is_404(fake: FakeTwilio) -> None:
    response = requests.get(f"{fake.url}/2010-04-01/Nope.json", timeout=5)

    assert response.status_code == 404
    assert response.json() == {
        "code": 20404,
        "message": "The requested resource /2010-04-01/Nope.json was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_unsupported_method_is_405(fake: FakeTwilio, client: Client) -> None:
    sid = client.messages.create(to=TO, from_=FROM, body="x").sid

    response = requests.delete(
        api_url(fake, f"Messages/{sid}.json"), auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
    )

    assert (response.status_code, response.json()["code"]) == (405, 20004)


# Faults, latency, concurrency


@pytest.mark.parametrize(
    ("status", "code", "phrase"),
    [(429, 20429, "Too Many Requests"), (500, 20500, "Internal Server Error")],
)
def test_faults_answer_errors_and_create_nothing(
    fake: FakeTwilio, client: Client, status: int, code: int, phrase: str
) -> None:
    fake.set_faults(rate=1.0, statuses=(status,))

    with pytest.raises(TwilioRestException) as message_error:
        client.messages.create(to=TO, from_=FROM, body="x")
    with pytest.raises(TwilioRestException) as call_error:
        client.calls.create(to=TO, from_=FROM, url="https://example.com/voice")

    assert_twilio_error(message_error.value, status, code, phrase)
    assert_twilio_error(call_error.value, status, code, phrase)
    assert fake.messages == [] and fake.calls == []
    assert client.messages.list() == []  # reads are not faulted


def test_fault_rate_is_a_share_and_seeded(fake: FakeTwilio, client: Client) -> None:
    def outcomes() -> list[int]:
        results = []
        for _ in range(40):
            try:
                client.messages.create(to=TO, from_=FROM, body="x")
                results.append(201)
            except TwilioRestException as exc:
                results.append(exc.status)
        return results

    fake.set_faults(rate=0.5, statuses=(429, 503), seed=7)
    first = outcomes()
    created = len(fake.messages)
    fake.set_faults(rate=0.5, statuses=(429, 503), seed=7)

    assert outcomes() == first
    assert set(first) == {201, 429, 503}
    assert created == first.count(201)


def test_set_faults_rejects_nonsense(fake: FakeTwilio) -> None:
    with pytest.raises(ValueError):
        fake.set_faults(rate=1.5)
    with pytest.raises(ValueError):
        fake.set_faults(rate=0.5, statuses=(200,))


def test_a_429_says_when_to_come_back(fake: FakeTwilio) -> None:
    fake.set_faults(rate=1.0, statuses=(429,))
    response = requests.post(
        api_url(fake, "Messages.json"),
        data={"To": TO, "From": FROM, "Body": "x"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert fake.messages == []


def test_faults_after_create_keep_what_was_created(fake: FakeTwilio) -> None:
    fast = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=0.5))
    fast.api.base_url = fake.url
    fake.set_faults(late_seconds=1.0)
    fake.script_faults("late", "500-after-create", "drop-after-create", "ok")

    with pytest.raises(requests.exceptions.Timeout):
        fast.messages.create(to=TO, from_=FROM, body="late")
    with pytest.raises(TwilioRestException) as failed:
        fast.messages.create(to=TO, from_=FROM, body="500")
    assert failed.value.status == 500
    with pytest.raises(requests.exceptions.ConnectionError):
        fast.calls.create(to=TO, from_=FROM, url="https://example.com/voice")
    fast.messages.create(to=TO, from_=FROM, body="ok")

    assert [m["body"] for m in fake.messages] == ["late", "500", "ok"]  # each created once
    assert len(fake.calls) == 1
    assert [r.status for r in fake.requests] == [201, 500, 0, 201]


def test_faults_can_be_scripted_and_shared_over_http(fake: FakeTwilio, client: Client) -> None:
    script = requests.post(f"{fake.url}/_fake/script", json=["429", "ok", "503"], timeout=5)
    assert script.json()["scripted"] == ["429", "ok", "503"]
    outcomes = []
    for _ in range(4):
        try:
            client.messages.create(to=TO, from_=FROM, body="x")
            outcomes.append(201)
        except TwilioRestException as exc:
            outcomes.append(exc.status)
    assert outcomes == [429, 201, 503, 201]
    bad = requests.post(f"{fake.url}/_fake/script", json=["sometimes"], timeout=5)
    assert bad.status_code == 400
    config = {"fault_rate": 0.5, "faults": ["late", "drop-after-create"], "late_seconds": 6}
    answer = requests.post(f"{fake.url}/_fake/config", json=config, timeout=5).json()
    assert (answer["faults"], answer["late_seconds"]) == (["late", "drop-after-create"], 6.0)


def collect_callbacks(fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    collected: list[Any] = []
    monkeypatch.setattr(fake.callbacks, "transport", collected.append)
    return collected


def wait_for(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


# Records Twilio lists only after its answer (or its silence): "...-then-create"


def test_504_then_create_lists_the_message_only_once_created(
    fake: FakeTwilio, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected = collect_callbacks(fake, monkeypatch)
    fake.callbacks.configure(delay=0.0)
    told: list[str] = []
    monkeypatch.setattr(fake, "on_create", lambda kind, record: told.append(record["sid"]))
    fake.rewrite_bodies = True
    fake.set_faults(create_after=60.0)  # never by itself here: the test says when
    fake.script_faults("504-then-create")

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(
            to=TO, from_=FROM, body="see https://example.com/x", status_callback="https://a.x/s"
        )
    assert_twilio_error(caught.value, 504, 20504, "Gateway Timeout")
    assert client.messages.list(to=TO) == []  # the app's re-check finds nothing yet
    assert (fake.pending_creates, told, collected) == (1, [], [])
    assert [r.status for r in fake.requests] == [504, 200]

    assert fake.run_pending_creates() == 1

    (listed,) = client.messages.list(to=TO)
    assert listed.body.startswith("see https://twil.io/")  # stored as any create is
    assert told == [listed.sid] and fake.pending_creates == 0
    assert wait_for(lambda: len(collected) == 2)
    assert [c.params["MessageStatus"] for c in collected] == ["sent", "delivered"]
    assert {c.params["MessageSid"] for c in collected} == {listed.sid}
    assert fake.run_pending_creates() == 0  # each is created once


def test_drop_then_create_lists_the_call_create_after_seconds_later(
    fake: FakeTwilio, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected = collect_callbacks(fake, monkeypatch)
    fake.callbacks.configure(delay=0.0)
    fake.complete_after = 0.0
    config = {"faults": ["drop-then-create"], "create_after": 1.0}
    assert requests.post(f"{fake.url}/_fake/config", json=config, timeout=5).status_code == 200
    fake.script_faults("drop-then-create")
    asked = datetime.now(UTC).replace(microsecond=0)

    with pytest.raises(requests.exceptions.ConnectionError):
        client.calls.create(
            to=TO, from_=FROM, url="https://example.com/voice", status_callback="https://a.x/c"
        )
    assert client.calls.list(to=TO) == []
    assert [r.status for r in fake.requests] == [0, 200]  # no answer at all

    # The timer itself, this once: the call appears about a second later, dated then.
    assert wait_for(lambda: len(client.calls.list(to=TO)) == 1, 3.0)
    (call,) = client.calls.list(to=TO)
    assert call.date_created >= asked + timedelta(seconds=1)
    assert wait_for(lambda: client.calls(call.sid).fetch().status == "completed")
    assert wait_for(lambda: len(collected) == 1)
    assert (collected[0].params["CallSid"], collected[0].params["CallStatus"]) == (
        call.sid,
        "completed",
    )


def test_late_then_create_answers_before_twilio_lists_it(fake: FakeTwilio) -> None:
    fast = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=0.2))
    fast.api.base_url = fake.url
    fake.set_faults(late_seconds=0.4, create_after=60.0)
    fake.script_faults("late-then-create", "late-then-create")

    with pytest.raises(requests.exceptions.Timeout):
        fast.messages.create(to=TO, from_=FROM, body="gave up")
    assert fast.messages.list(to=TO) == []  # re-checked at once: not there
    # A client that waits gets a 201 with the SID while the list still lacks it.
    answer = requests.post(
        api_url(fake, "Messages.json"),
        data={"To": TO, "From": FROM, "Body": "waited"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )
    assert answer.status_code == 201
    assert fake.messages == [] and fake.pending_creates == 2

    assert fake.run_pending_creates() == 2
    assert [m["body"] for m in fake.messages] == ["gave up", "waited"]
    assert answer.json()["sid"] == fake.messages[1]["sid"]


def test_reset_cancels_pending_creates(fake: FakeTwilio, client: Client) -> None:
    fake.set_faults(create_after=0.2)
    fake.script_faults("504-then-create", "drop-then-create")
    with pytest.raises(TwilioRestException):
        client.messages.create(to=TO, from_=FROM, body="x")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.calls.create(to=TO, from_=FROM, url="https://example.com/voice")
    assert fake.pending_creates == 2

    fake.reset()

    assert fake.pending_creates == 0 and fake.run_pending_creates() == 0
    time.sleep(0.4)  # past create_after: the cancelled timers must not fire
    assert (fake.messages, fake.calls) == ([], [])


def test_create_after_over_http(fake: FakeTwilio, client: Client) -> None:
    outcomes = ["504-then-create", "drop-then-create", "late-then-create"]
    config = {"faults": outcomes, "create_after": 0.5}
    answer = requests.post(f"{fake.url}/_fake/config", json=config, timeout=5).json()
    assert (answer["faults"], answer["create_after"]) == (outcomes, 0.5)
    for bad in ({"create_after": -1}, {"create_after": "soon"}, {"faults": ["504-then-maybe"]}):
        refused = requests.post(f"{fake.url}/_fake/config", json=bad, timeout=5)
        assert refused.status_code == 400 and set(refused.json()) == ERROR_KEYS
    assert requests.get(f"{fake.url}/_fake/config", timeout=5).json()["create_after"] == 0.5
    assert requests.post(f"{fake.url}/_fake/script", json=["later"], timeout=5).status_code == 400
    with pytest.raises(ValueError):
        fake.set_faults(create_after=-0.1)

    # Another process (the local stack's tests) counts and flushes them over HTTP too.
    fake.set_faults(create_after=60.0)
    assert requests.post(f"{fake.url}/_fake/script", json=outcomes[:1], timeout=5).ok
    with pytest.raises(TwilioRestException):
        client.messages.create(to=TO, from_=FROM, body="x")
    pending = f"{fake.url}/_fake/pending_creates"
    assert requests.get(pending, timeout=5).json() == {"pending_creates": 1}
    assert requests.post(pending, timeout=5).json() == {"created": 1, "pending_creates": 0}
    assert [m["body"] for m in fake.messages] == ["x"]


def test_status_callbacks_are_signed_as_twilio_signs_them(
    fake: FakeTwilio, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twilio.request_validator import RequestValidator

    collected = collect_callbacks(fake, monkeypatch)
    fake.callbacks.configure(delay=0.0)
    url = "https://app.example.com/api/status/messages?id=abc"
    sid = client.messages.create(to=TO, from_=FROM, body="x", status_callback=url).sid
    client.calls.create(
        to=TO,
        from_=FROM,
        url="https://example.com/voice",
        status_callback="https://app.example.com/api/status/calls?id=c1",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    client.messages.create(to=TO, from_=FROM, body="no callback asked for")
    assert wait_for(lambda: len(collected) == 6)
    messages = [c for c in collected if "MessageSid" in c.params]
    assert [(c.params["MessageSid"], c.params["MessageStatus"]) for c in messages] == [
        (sid, "sent"),
        (sid, "delivered"),
    ]
    calls = [c.params["CallStatus"] for c in collected if "CallSid" in c.params]
    assert calls == ["initiated", "ringing", "in-progress", "completed"]
    validator = RequestValidator(AUTH_TOKEN)
    assert all(validator.validate(c.url, c.params, c.signature) for c in collected)


def test_status_callbacks_can_come_twice_out_of_order_late_or_early(
    fake: FakeTwilio, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected = collect_callbacks(fake, monkeypatch)
    config = {"callback_delay": 0, "callback_faults": ["twice", "out-of-order"]}
    assert requests.post(f"{fake.url}/_fake/config", json=config, timeout=5).status_code == 200
    client.messages.create(to=TO, from_=FROM, body="x", status_callback="https://a.example/s")
    assert wait_for(lambda: len(collected) == 4)
    order = [c.params["MessageStatus"] for c in collected]
    assert order == ["delivered", "delivered", "sent", "sent"]
    collected.clear()
    fake.callbacks.configure(delay=5.0, faults=("early",))
    client.messages.create(to=TO, from_=FROM, body="y", status_callback="https://a.example/s")
    assert wait_for(lambda: len(collected) == 1, 2.0)  # "sent" at once, "delivered" later
    assert collected[0].params["MessageStatus"] == "sent"
    with pytest.raises(ValueError):
        fake.callbacks.configure(faults=("sometimes",))


def test_callbacks_go_to_this_machine_only(fake: FakeTwilio, client: Client) -> None:
    fake.callbacks.configure(delay=0.0)
    client.messages.create(to=TO, from_=FROM, body="x", status_callback="https://a.example/s")
    assert wait_for(lambda: len(fake.callbacks.held) == 2)  # kept, never sent off the machine


def test_what_it_creates_is_completed_and_priced_when_asked(
    fake: FakeTwilio, client: Client
) -> None:
    fake.complete_after, fake.price_after = 0.05, 0.5
    message = client.messages.create(to=TO, from_=FROM, body="x" * 200)  # two segments
    call = client.calls.create(to=TO, from_=FROM, url="https://example.com/voice")
    assert message.status == "queued" and message.price is None
    assert wait_for(lambda: client.messages(message.sid).fetch().status == "delivered")
    fetched = client.messages(message.sid).fetch()
    # As Twilio does: delivered first, priced some time after.
    assert (fetched.price, fetched.price_unit) == (None, "USD")
    assert fetched.date_sent is not None
    assert wait_for(lambda: client.messages(message.sid).fetch().price == "-0.01580")
    assert wait_for(lambda: client.calls(call.sid).fetch().status == "completed")
    assert wait_for(lambda: client.calls(call.sid).fetch().price == "-0.01400")
    fake.reset()
    assert fake.complete_after is None  # tests see nothing move by itself
    assert fake.price_after == 5.0


def test_prices_are_set_by_a_knob(fake: FakeTwilio, client: Client) -> None:
    fake.complete_after, fake.price_after = 0.0, 0.0
    fake.message_price, fake.call_price = "-0.05", "-0.2"
    message = client.messages.create(to=TO, from_=FROM, body="x" * 200)
    call = client.calls.create(to=TO, from_=FROM, url="https://example.com/voice")
    assert wait_for(lambda: client.messages(message.sid).fetch().price == "-0.10000")
    assert wait_for(lambda: client.calls(call.sid).fetch().price == "-0.20000")
    config = {"price_after": 30, "message_price": "-0.0083", "call_price": -0.013}
    answer = requests.post(f"{fake.url}/_fake/config", json=config, timeout=5).json()
    assert (answer["price_after"], answer["message_price"], answer["call_price"]) == (
        30.0,
        "-0.0083",
        "-0.013",
    )
    bad = requests.post(f"{fake.url}/_fake/config", json={"message_price": "cheap"}, timeout=5)
    assert bad.status_code == 400


def test_a_call_with_inline_twiml_runs_it(fake: FakeTwilio, client: Client) -> None:
    fake.complete_after = 0.0
    call = client.calls.create(to=TO, from_=FROM, twiml="<Response><Say>Hi there</Say></Response>")
    assert wait_for(lambda: "transcript" in next(c for c in fake.calls if c["sid"] == call.sid))
    (ran,) = [c for c in fake.calls if c["sid"] == call.sid]
    assert "Say" in ran["transcript"] and "Hi there" in ran["transcript"]


def test_a_called_number_can_be_busy_or_not_answer(
    fake: FakeTwilio, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected = collect_callbacks(fake, monkeypatch)
    fake.callbacks.configure(delay=0.0)
    config = {"complete_after": 0.0, "call_outcomes": {TO: "busy"}}
    assert requests.post(f"{fake.url}/_fake/config", json=config, timeout=5).status_code == 200
    call = client.calls.create(
        to=TO,
        from_=FROM,
        url="https://example.com/voice",
        status_callback="https://a.example/calls",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert wait_for(lambda: client.calls(call.sid).fetch().status == "busy")
    assert wait_for(lambda: len(collected) == 3)
    assert [c.params["CallStatus"] for c in collected] == ["initiated", "ringing", "busy"]
    bad = {"call_outcomes": {TO: "maybe"}}
    assert requests.post(f"{fake.url}/_fake/config", json=bad, timeout=5).status_code == 400


def test_latency_is_honoured(fake: FakeTwilio, client: Client) -> None:
    fake.latency = 0.3

    started = time.monotonic()
    client.messages.create(to=TO, from_=FROM, body="slow")

    assert time.monotonic() - started >= 0.3


def test_concurrent_creates(fake: FakeTwilio) -> None:
    def send(i: int) -> str:
        return make_client(fake).messages.create(to=TO, from_=FROM, body=str(i)).sid

    with ThreadPoolExecutor(max_workers=8) as pool:
        sids = list(pool.map(send, range(40)))

    assert len(set(sids)) == 40
    assert sorted(message["sid"] for message in fake.messages) == sorted(sids)
    assert len(fake.requests) == 40


# Request log and control endpoints


def test_request_log_keeps_params_but_no_secrets(fake: FakeTwilio, client: Client) -> None:
    client.messages.create(to=TO, from_=FROM, body="logged")
    make_client(fake, KEY_SID, KEY_SECRET, ACCOUNT_SID).messages.list(to=TO)

    created, listed = fake.requests
    assert created == RecordedRequest(
        method="POST",
        path=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        params=[("To", TO), ("From", FROM), ("Body", "logged")],
        username=ACCOUNT_SID,
        status=201,
    )
    assert (listed.method, listed.username, listed.status) == ("GET", KEY_SID, 200)
    assert ("To", TO) in listed.params
    log = repr(fake.requests) + requests.get(f"{fake.url}/_fake/requests", timeout=5).text
    assert AUTH_TOKEN not in log and KEY_SECRET not in log
    assert "Authorization" not in log and "Basic " not in log


def test_control_endpoints(fake: FakeTwilio, client: Client) -> None:
    config = {"latency": 0.0, "fault_rate": 1.0, "fault_statuses": [503]}
    response = requests.post(f"{fake.url}/_fake/config", json=config, timeout=5)
    assert response.status_code == 200
    assert response.json() == {
        "latency": 0.0,
        "rewrite_bodies": False,
        "complete_after": None,
        "price_after": 5.0,
        "message_price": "-0.00790",
        "call_price": "-0.01400",
        "call_outcomes": {},
        "fault_rate": 1.0,
        "faults": ["503"],
        "late_seconds": 7.0,
        "create_after": 3.0,
        "scripted": [],
        "callback_delay": 0.2,
        "callback_faults": [],
        "callback_late_seconds": 3.0,
        "signing_key": None,
    }

    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_=FROM, body="x")
    assert_twilio_error(caught.value, 503, 20503, "Service Unavailable")

    logged = requests.get(f"{fake.url}/_fake/requests", timeout=5).json()
    assert [(r["method"], r["status"], r["username"]) for r in logged] == [
        ("POST", 503, ACCOUNT_SID)
    ]
    assert ["To", TO] in logged[0]["params"]

    assert requests.post(f"{fake.url}/_fake/reset", timeout=5).status_code == 200
    assert fake.requests == []
    sid = client.messages.create(to=TO, from_=FROM, body="x", status_callback="https://e.x/s").sid
    client.calls.create(to=TO, from_=FROM, twiml="<Response/>")

    messages = requests.get(f"{fake.url}/_fake/messages", timeout=5).json()
    calls = requests.get(f"{fake.url}/_fake/calls", timeout=5).json()
    assert [(m["sid"], m["status_callback"]) for m in messages] == [(sid, "https://e.x/s")]
    assert [c["twiml"] for c in calls] == ["<Response/>"]
    # The control endpoints stay out of the request log.
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == ["Messages.json", "Calls.json"]


def test_control_config_latency_and_errors(fake: FakeTwilio) -> None:
    response = requests.post(f"{fake.url}/_fake/config", json={"latency": 0.25}, timeout=5)
    assert response.json()["latency"] == 0.25
    assert fake.latency == 0.25

    bad = requests.post(f"{fake.url}/_fake/config", json={"fault_rate": "lots"}, timeout=5)
    assert bad.status_code == 400
    assert set(bad.json()) == ERROR_KEYS
    assert requests.get(f"{fake.url}/_fake/nope", timeout=5).status_code == 404


# Lifecycle and command line


def test_start_stop() -> None:
    server = FakeTwilio(accounts={ACCOUNT_SID: AUTH_TOKEN})
    url = server.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and url == server.url
        with pytest.raises(RuntimeError):
            server.start()
        assert requests.get(f"{url}/_fake/messages", timeout=5).json() == []
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_fake/messages", timeout=5)


def test_main_requires_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)

    with pytest.raises(SystemExit) as caught:
        main(["--account-sid", ACCOUNT_SID])

    assert caught.value.code == 2


def test_command_line_serves_until_interrupted() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_REGION", "TWILIO_EDGE")}
    env["TWILIO_AUTH_TOKEN"] = AUTH_TOKEN  # from the environment, off the command line
    command = [sys.executable, "-m", "devkit.fake_twilio", "--port", "0"]
    command += ["--account-sid", ACCOUNT_SID, "--api-key", f"{KEY_SID}:{KEY_SECRET}"]
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal gives it, even when pytest itself was started with SIGINT ignored
        # (a background job of a non-interactive shell): an ignored signal survives exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        banner = process.stdout.readline() if process.stdout else ""
        url = re.search(r"http://[\d.]+:\d+", banner)
        assert url, banner + (process.stderr.read() if process.poll() is not None else "")
        client = Client(KEY_SID, KEY_SECRET, ACCOUNT_SID)
        client.api.base_url = url.group()
        assert client.messages.create(to=TO, from_=FROM, body="cli").status == "queued"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)  # slow only on a loaded machine
    assert process.returncode == 0, stderr
    assert AUTH_TOKEN not in banner


def test_the_config_endpoint_refuses_an_unknown_knob(fake: FakeTwilio) -> None:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        fake.url + "/_fake/config", data=json.dumps({"fault_rte": 0.5}).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
    assert "unknown key 'fault_rte'" in refused.value.read().decode()
