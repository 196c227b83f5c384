"""Twimlets end to end: signed API Gateway events, S3 and SSM in the moto server, a phone."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, quote

import boto3
import pytest

from chalicelib.twimlets import TWIMLETS, holdmusic, voicemail
from chalicelib.webhooks.urls import encode_query
from devkit import demo
from devkit.phone import InProcess, Leg, Phone
from tests.functional.conftest import EXECUTE_API

CUSTOM = "https://voice.example.com"
TEL = "https://voice.example.com/tel"
CALL = {
    "CallSid": "CA" + "c" * 32,
    "AccountSid": demo.ACCOUNT_SID,
    "From": "+15105551212",
    "Caller": "+15105551212",
    "To": demo.NUMBER,
    "Called": demo.NUMBER,
    "CallStatus": "in-progress",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
    "FromZip": "",
}
MUSIC = "com.twilio.music.ambient"
PRIVATE = "switchboard-test-private-music"


@pytest.fixture(autouse=True)
def _fresh_clients():
    holdmusic.reset()
    voicemail.reset()
    yield
    holdmusic.reset()
    voicemail.reset()


def header(response: dict[str, Any], name: str) -> str | None:
    return {k.lower(): v for k, v in response["headers"].items()}.get(name.lower())


def twiml(response: dict[str, Any]) -> ET.Element:
    assert response["statusCode"] == 200, response
    assert header(response, "Content-Type").startswith("text/xml")
    return ET.fromstring(response["body"].encode("utf-8"))


def path_of(url: str, base: str) -> str:
    assert url.startswith(base + "/twimlets/"), url
    return url[len(base) :]


def phone(app: Any, *, base_path: str = "", **script: Any) -> Phone:
    return Phone(InProcess(app, demo.AUTH_TOKEN, base_path=base_path), **script)


# The route: every name, both methods, the signature first.


SAMPLES = {
    "message": "Message=Hello",
    "echo": "Twiml=%3CResponse%2F%3E",
    "forward": "PhoneNumber=%2B14155550100",
    "callme": "PhoneNumber=%2B14155550100",
    "simulring": "PhoneNumbers%5B%5D=%2B14155550100",
    "findme": "PhoneNumbers%5B%5D=%2B14155550100",
    "whisper": "Message=Hi",
    "menu": "Options%5B1%5D=https%3A%2F%2Fexample.org%2F1",
    "conference": "Name=room",
    "voicemail": "Email=ops%40example.org",
    "holdmusic": "Bucket=",
}


@pytest.fixture
def echo_on(ssm: Any) -> None:
    """The echo twimlet is off unless its owner turns it on (guards.callers)."""
    demo.put_parameters(ssm, demo.SSM_PATH, {"twimlets/echo_enabled": ("true", "String")})


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_twimlet_answers_signed_get_and_post(caller, echo_on, method):
    assert sorted(SAMPLES) == sorted(TWIMLETS)
    for name, query in SAMPLES.items():
        path = f"/twimlets/{name}?{query}"
        params = None if method == "GET" else CALL
        response = caller.webhook(path, params, method=method)
        assert response["statusCode"] == 200, name
        assert header(response, "Content-Type").startswith("text/xml")
        assert ET.fromstring(response["body"]).tag == "Response"
        unsigned = caller.webhook(path, params, method=method, signature="")
        assert unsigned["statusCode"] == 403


def test_unknown_twimlet_is_404_after_the_signature_check(caller):
    response = caller.webhook("/twimlets/nope?Message=x", CALL)
    assert response["statusCode"] == 404
    assert header(response, "Content-Type").startswith("text/plain")
    assert caller.webhook("/twimlets/nope", CALL, signature="")["statusCode"] == 403
    assert caller.webhook("/twimlets/nope", CALL, token="wrong")["statusCode"] == 403
    assert caller.webhook("/twimlets/Message", CALL)["statusCode"] == 404


# The reference's examples, through the app, on the custom domain they assume.


def test_examples_from_the_reference(caller, echo_on):
    message = caller.webhook(
        "/twimlets/message?Message%5B0%5D=https%3A%2F%2Fcdn.example.net%2Fclosed.wav"
        "&Message%5B1%5D=Our%20office%20reopens%20at%209.",
        method="GET",
        base=CUSTOM,
    )
    assert message["body"].endswith(
        "<Response><Play>https://cdn.example.net/closed.wav</Play>"
        "<Say>Our office reopens at 9.</Say></Response>"
    )
    echo = caller.webhook(
        "/twimlets/echo?Twiml=%3CResponse%3E%3CReject%2F%3E%3C%2FResponse%3E",
        method="GET",
        base=CUSTOM,
    )
    assert echo["body"] == "<Response><Reject/></Response>"
    forward = twiml(
        caller.webhook(
            "/twimlets/forward?PhoneNumber=%2B12065550142&Timeout=30"
            "&FailUrl=https%3A%2F%2Fexample.org%2Fbusy.xml",
            CALL,
            base=CUSTOM,
        )
    )
    assert forward.find("Dial").attrib == {
        "action": "https://voice.example.com/twimlets/forward?Dial=true"
        "&FailUrl=https%3A%2F%2Fexample.org%2Fbusy.xml",
        "timeout": "30",
    }
    menu = caller.webhook(
        "/twimlets/menu?Message=Hi&Options%5B2%5D=https%3A%2F%2Fexample.org%2Fsupport",
        {**CALL, "Digits": "2"},
        base=CUSTOM,
    )
    assert menu["statusCode"] == 302
    assert header(menu, "Location") == "https://example.org/support"
    assert menu["body"] == ""


# Generated URLs: absolute under the base Twilio reached, and valid when Twilio calls them back.

GENERATORS = [
    (
        "/twimlets/forward?PhoneNumber=%2B12065550142&FailUrl=https%3A%2F%2Fx.org%2F~me%2Fvm",
        {},
        ["action"],
    ),
    (
        "/twimlets/callme?PhoneNumber=%2B13125550123&Message=Press%20a%20key%20%26%20talk&FailUrl=",
        {},
        ["action", "url"],
    ),
    (
        "/twimlets/simulring?PhoneNumbers%5B%5D=%2B13125550188&PhoneNumbers%5B%5D=%2B13125550111"
        "&Message=Sales%20call",
        {},
        ["action", "url"],
    ),
    (
        "/twimlets/findme?PhoneNumbers%5B%5D=%2B16175550101&PhoneNumbers%5B%5D=%2B16175550102"
        "&PhoneNumbers%5B%5D=%2B16175550103&Message=Caf%C3%A9%20~%20Acme&FailUrl=",
        {},
        ["action", "url"],
    ),
    (
        "/twimlets/voicemail?Email=ops%2Bvm~1%40example.org&NotifySms=%2B16175550100",
        {},
        ["transcribeCallback"],
    ),
    ("/twimlets/conference?Music=classical&Name=r", {}, ["waitUrl"]),
]


@pytest.mark.parametrize(
    ("base", "public_url"), [(EXECUTE_API, None), (TEL, None), (CUSTOM, CUSTOM)]
)
@pytest.mark.parametrize(("path", "form", "attributes"), GENERATORS)
def test_generated_urls_are_signed_callbacks(
    caller, monkeypatch, base, public_url, path, form, attributes
):
    if public_url:
        monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", public_url)
    document = twiml(caller.webhook(path, {**CALL, **form}, base=base))
    urls = [
        element.get(attribute)
        for element in document.iter()
        for attribute in attributes
        if element.get(attribute)
    ]
    assert urls
    for url in urls:
        callback = path_of(url, base)
        method = "GET" if "holdmusic" in url else "POST"
        params = None if method == "GET" else {**CALL, "DialCallStatus": "busy"}
        response = caller.webhook(callback, params, base=base, method=method)
        assert response["statusCode"] in (200, 302), (url, response)
        # Twilio signs the URL exactly as generated; a changed value must not validate.
        name, _, rest = callback.partition("?")
        first, _, others = rest.partition("&")
        tampered = f"{name}?{first}x" + (f"&{others}" if others else "")
        forged = caller.webhook(
            tampered, params, base=base, method=method, sign_url=base + callback
        )
        assert forged["statusCode"] == 403


# Each deviation, through the app.


def test_configuration_is_read_from_the_query_only(caller):
    response = caller.webhook("/twimlets/message", {**CALL, "Message": "from the body"})
    assert response["body"].endswith("<Response />")
    body_markers = {**CALL, "Dial": "true", "DialCallStatus": "busy", "FailUrl": "https://x.org"}
    forward = twiml(caller.webhook("/twimlets/forward?PhoneNumber=%2B12065550142", body_markers))
    assert forward.find("Dial") is not None


def test_twilio_fields_from_query_or_body_body_winning(caller):
    menu = "/twimlets/menu?Options%5B1%5D=https%3A%2F%2Fx.org%2F1"
    menu += "&Options%5B2%5D=https%3A%2F%2Fx.org%2F2"
    from_query = caller.webhook(menu + "&Digits=1", CALL)
    assert header(from_query, "Location") == "https://x.org/1"
    body_wins = caller.webhook(menu + "&Digits=1", {**CALL, "Digits": "2"})
    assert header(body_wins, "Location") == "https://x.org/2"


@pytest.mark.parametrize(
    ("allowed", "caller_number", "dialled"),
    [
        ("AllowedCallers%5B%5D=510-555-1212", "+15105551212", True),
        ("AllowedCallers=%2B1%20(510)%20555-1212", "+15105551212", True),  # a scalar is a list
        ("AllowedCallers=5105559999", "+15105551212", False),
        ("AllowedCallers%5B%5D=15005550006", "+15105551212", False),  # the called number: no
    ],
)
def test_forward_allow_list(caller, allowed, caller_number, dialled):
    document = twiml(
        caller.webhook(
            f"/twimlets/forward?PhoneNumber=%2B12065550142&{allowed}",
            {**CALL, "From": caller_number, "Caller": caller_number},
        )
    )
    if dialled:
        assert document.find("Dial").text == "+12065550142"
    else:
        assert [e.text for e in document] == [
            "Sorry, you are calling from a restricted number. Good bye."
        ]


def test_findme_keeps_the_first_ten_and_simulring_the_given_order(caller):
    numbers = "&".join(f"PhoneNumbers%5B%5D=%2B1617555{n:04d}" for n in range(1, 13))
    findme = twiml(caller.webhook(f"/twimlets/findme?{numbers}", CALL))
    assert findme.find("Dial/Number").text == "+16175550001"
    action = findme.find("Dial").get("action")
    assert action.count("PhoneNumbers%5B%5D=") == 9
    assert "%2B16175550011" not in action
    simulring = twiml(
        caller.webhook(
            "/twimlets/simulring?PhoneNumbers%5B%5D=%2B19995550002&PhoneNumbers%5B%5D=%2B11115550001",
            CALL,
        )
    )
    assert [n.text for n in simulring.iter("Number")] == ["+19995550002", "+11115550001"]


def test_conference_pass_code_is_compared_exactly(caller):
    path = "/twimlets/conference?Password=1234&Name=r"
    for digits in ("01234", "1234.0", " 1234"):
        document = twiml(caller.webhook(path, {**CALL, "Digits": digits}))
        assert document.find("Gather/Say").text == "Please enter your conference pass code"
    document = twiml(caller.webhook(path, {**CALL, "Digits": "1234"}))
    assert document.find("Dial/Conference").text == "r"


def test_conference_sms_alerts_are_not_message_verbs_and_survive_a_queue_outage(
    caller, log_lines, monkeypatch
):
    # The SMS cannot be queued without a queue; the caller still gets the room.
    monkeypatch.delenv("SWITCHBOARD_QUEUE", raising=False)
    document = twiml(
        caller.webhook(
            "/twimlets/conference?Moderators%5B%5D=212-555-0147&EnableSmsNotifications=1",
            {**CALL, "From": "+13105550110", "Caller": "+13105550110"},
        )
    )
    assert [e.tag for e in document] == ["Say", "Dial"]
    assert document.find("Dial/Conference").get("startConferenceOnEnter") == "false"
    errors = [line for line in log_lines() if line["message"] == "twimlet notification not queued"]
    assert [line["kind"] for line in errors] == ["sms_notification"]
    assert "2125550147" not in str(errors)


def test_voicemail_encodes_the_email_and_builds_the_callback_under_the_base(caller):
    document = twiml(
        caller.webhook("/twimlets/voicemail?Email=a%2Bb%40example.org", CALL, base=TEL)
    )
    assert document.find("Record").attrib == {
        "transcribe": "true",
        "transcribeCallback": "https://voice.example.com/tel/twimlets/voicemail?Email=a%2Bb%40example.org",
    }


def test_conference_genres_play_this_apps_holdmusic(caller):
    document = twiml(caller.webhook("/twimlets/conference?Music=rock&Name=r", CALL))
    assert document.find("Dial/Conference").get("waitUrl") == (
        f"{EXECUTE_API}/twimlets/holdmusic?Bucket=com.twilio.music.rock"
    )


# Whole calls, with the phone simulator playing Twilio's part.


def test_menu_then_findme_no_answer_then_answer_then_hangup(app):
    findme = (
        f"{CUSTOM}/twimlets/findme?PhoneNumbers%5B%5D=%2B16175550101"
        "&PhoneNumbers%5B%5D=%2B16175550102&Message=Call%20for%20Acme"
        "&FailUrl=https%3A%2F%2Fexample.org%2Fvm"
    )
    menu = f"{CUSTOM}/twimlets/menu?Message=Press%201%20for%20sales"
    menu += f"&Options%5B1%5D={quote(findme, safe='')}"
    call = phone(
        app,
        digits=["1"],
        legs=[Leg("no-answer"), Leg("completed", digits="5")],
    ).call(menu)
    assert call.verbs("caller") == [
        ("Gather", ""),
        ("Say", "Press 1 for sales"),
        ("Pressed", "1"),
        ("302", findme),
        ("Dial", "+16175550101"),
        ("Dial ended", "no-answer"),
        ("Dial", "+16175550102"),
        ("Dial ended", "completed"),
        ("Hangup", ""),
    ]
    assert call.verbs("callee +16175550102") == [
        ("Answered", ""),
        ("Gather", ""),
        ("Say", "Call for Acme"),
        ("Pressed", "5"),
        ("End", ""),
        ("Connected", "+15105551212"),
    ]
    assert all(request.status in (200, 302) for request in call.requests)


def test_findme_callee_who_presses_nothing_is_hung_up_and_the_next_one_tried(app):
    url = (
        f"{EXECUTE_API}/twimlets/findme?PhoneNumbers%5B%5D=%2B16175550101"
        "&PhoneNumbers%5B%5D=%2B16175550102"
    )
    call = phone(app, legs=[Leg("completed", digits=None), Leg("busy")]).call(url)
    assert call.verbs("callee +16175550101")[-2:] == [("No input", ""), ("Hangup", "")]
    assert call.verbs("caller")[-3:] == [
        ("Dial", "+16175550102"),
        ("Dial ended", "busy"),
        ("Hangup", ""),
    ]


def test_forward_busy_goes_to_the_fail_url_twimlet(app):
    fail = f"{TEL}/twimlets/message?Message=Nobody%20is%20available"
    url = f"{TEL}/twimlets/forward?PhoneNumber=%2B12065550142&FailUrl={quote(fail, safe='')}"
    call = phone(app, base_path="/tel", legs=[Leg("busy")]).call(url)
    assert call.verbs() == [
        ("Dial", "+12065550142"),
        ("Dial ended", "busy"),
        ("302", fail),
        ("Say", "Nobody is available"),
        ("End", ""),
    ]


def test_conference_with_pass_code_and_hold_music(app, music):
    url = f"{EXECUTE_API}/twimlets/conference?Password=4321&Music=ambient&Name=standup"
    call = phone(app, digits=["9999", "4321"]).call(url)
    verbs = call.verbs("caller")
    assert verbs.count(("Say", "Please enter your conference pass code")) == 2
    assert verbs[-2:] == [
        ("Say", "You are now entering the conference line."),
        ("Conference", "standup"),
    ]
    played = sorted(text for verb, text in call.verbs("hold") if verb == "Play")
    assert played == [
        f"https://{MUSIC}.s3.amazonaws.com/a.mp3",
        f"https://{MUSIC}.s3.amazonaws.com/dir%2Fc+d.wav",
    ]
    assert call.verbs("hold")[-1] == ("Redirect", "")
    assert call.requests[-1].method == "GET"


# Bad input never gives a 500 or broken XML.

BAD_QUERIES = [
    "PhoneNumbers[[]=1&PhoneNumbers]=2&Options[a][b]=x&Message[]]=y&AllowedCallers[=z",
    "Message=%3C%2FSay%3E%3CDial%3E%2B19005550100%3C%2FDial%3E&Email=%22%3E%3C&Name=%26%3C%3E%22",
    "Message=%FF%FE%00%07bad&Options%5B%FF%5D=%FE&PhoneNumber=%C3%28&Bucket=%FF",
    "Message=%26nbsp%3B%26%23x0%3B%26%2355357%3B%26bogus%3B&Twiml=",
    # Grouped by name: API Gateway groups repeated names, so interleaved ones cannot be signed.
    "&".join(f"PhoneNumbers%5B%5D=%2B1{n:010d}" for n in range(1200))
    + "&"
    + "&".join(f"Options%5B{n}%5D=x{n}" for n in range(1200)),
    "Timeout=" + "9" * 5000 + "&Password=" + "1" * 3000 + "&Moderators%5B%5D=" + "2" * 3000,
    "Message[a][b][c][d]=deep&Moderators=scalar&EnableSmsNotifications[]=1&HumanCheck[]=",
]


def _as_gateway_signs(path: str) -> str:
    """The URL rebuilt from the decoded query, as the signature check rebuilds it."""
    name, _, query = path.partition("?")
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    pairs = [(key, value) for key, values in grouped.items() for value in values]
    return f"{EXECUTE_API}{name}?{encode_query(pairs)}"


@pytest.mark.parametrize("query", BAD_QUERIES, ids=range(len(BAD_QUERIES)))
def test_bad_input_never_breaks(caller, echo_on, query):
    params = {**CALL, "Digits": "1<&>", "From": "+1\x07<555>"}
    for name in TWIMLETS:
        path = f"/twimlets/{name}?{query}"
        # Bytes that are not UTF-8 reach the app as U+FFFD, so the URL Twilio signed cannot be
        # rebuilt and the request is refused (403, not a failure); signed as rebuilt, it works.
        response = caller.webhook(path, params, sign_url=_as_gateway_signs(path))
        assert response["statusCode"] in (200, 302), name
        if name != "echo" and response["body"]:
            ET.fromstring(response["body"].encode("utf-8"))
        assert caller.webhook(path, params)["statusCode"] in (200, 302, 403)


def test_a_body_that_is_not_utf8_is_refused_not_failed(caller):
    from devkit.events import twilio_event

    event = twilio_event(
        f"{EXECUTE_API}/twimlets/message?Message=x",
        CALL,
        auth_token=demo.AUTH_TOKEN,
        routes=caller.routes,
        base64_body=True,
    )
    event["body"] = "/w=="  # 0xFF
    assert caller.invoke(event)["statusCode"] == 403


# holdmusic against S3 in the moto server.


@pytest.fixture
def music(ssm: Any) -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=MUSIC)
    for key in ("a.mp3", "b.MP3", "notes.txt", "dir/c d.wav"):
        s3.put_object(Bucket=MUSIC, Key=key, Body=b"public " + key.encode())
    s3.create_bucket(Bucket=PRIVATE)
    for key in ("hold 1.mp3", "hold-2.ul", "cover.jpg"):
        s3.put_object(Bucket=PRIVATE, Key=key, Body=b"private " + key.encode())
    # Allowed, so that what is tested is the listing, not the allow-list (see test_guards.py).
    allowed = f"twilio {PRIVATE} com.twilio.music.empty com.twilio.music.missing"
    allowed += " no-such-private-bucket"
    demo.put_parameters(ssm, demo.SSM_PATH, {"twimlets/holdmusic_buckets": (allowed, "String")})
    return s3


def _watch(signed: bool) -> list[Any]:
    seen: list[Any] = []
    holdmusic.get_s3_client(signed=signed).meta.events.register(
        "before-send.s3", lambda request, **_: seen.append(request)
    )
    return seen


def test_holdmusic_public_bucket_unsigned_with_public_urls(caller, music):
    seen = _watch(signed=False)
    response = caller.webhook(
        f"/twimlets/holdmusic?Bucket={MUSIC}&Message=Please%20hold", method="GET"
    )
    document = twiml(response)
    children = [(e.tag, e.text) for e in document]
    assert children[-1] == ("Redirect", None)
    pairs = Counter(zip(children[:-1:2], children[1:-1:2], strict=True))
    hold = ("Say", "Please hold")
    assert pairs == Counter(
        {
            (("Play", f"https://{MUSIC}.s3.amazonaws.com/dir%2Fc+d.wav"), hold): 1,
            (("Play", f"https://{MUSIC}.s3.amazonaws.com/a.mp3"), hold): 1,
        }
    )
    assert [r.headers.get("Authorization") for r in seen] == [None]


def test_holdmusic_private_bucket_signed_and_presigned(caller, music):
    import requests

    seen = _watch(signed=True)
    document = twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={PRIVATE}", method="GET"))
    urls = [e.text for e in document if e.tag == "Play"]
    assert len(urls) == 2
    assert all("X-Amz-Signature=" in url for url in urls)
    assert seen and all(r.headers.get("Authorization") for r in seen)
    bodies = sorted(requests.get(url, timeout=5).content for url in urls)
    assert bodies == [b"private hold 1.mp3", b"private hold-2.ul"]


def test_holdmusic_shuffles(caller, music):
    s3 = music
    for n in range(12):
        s3.put_object(Bucket=MUSIC, Key=f"track{n:02d}.mp3", Body=b"x")
    orders = {
        tuple(
            e.text
            for e in twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={MUSIC}", method="GET"))
        )
        for _ in range(4)
    }
    assert len(orders) > 1


FAILED = "Failed to fetch the hold music."


@pytest.mark.parametrize("bucket", ["com.twilio.music.missing", "no-such-private-bucket"])
def test_holdmusic_missing_bucket(caller, music, bucket):
    document = twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={bucket}", method="GET"))
    assert [(e.tag, e.text) for e in document] == [("Say", FAILED)]


def test_holdmusic_bucket_without_audio(caller, music):
    music.create_bucket(Bucket="com.twilio.music.empty")
    music.put_object(Bucket="com.twilio.music.empty", Key="b.MP3", Body=b"x")
    document = twiml(
        caller.webhook("/twimlets/holdmusic?Bucket=com.twilio.music.empty", method="GET")
    )
    assert [(e.tag, e.text) for e in document] == [("Say", FAILED)]


def test_holdmusic_gives_up_quickly_when_s3_hangs(caller, music, monkeypatch, hanging_endpoint):
    caller.webhook("/twimlets/holdmusic?Bucket=", method="GET")  # parameters cached from SSM
    monkeypatch.setenv("AWS_ENDPOINT_URL", hanging_endpoint)
    started = time.monotonic()
    document = twiml(caller.webhook(f"/twimlets/holdmusic?Bucket={MUSIC}", method="GET"))
    elapsed = time.monotonic() - started
    assert [(e.tag, e.text) for e in document] == [("Say", FAILED)]
    assert elapsed < 8


# Notifications: queued by the webhook, sent by the queue worker.

SENDER = "voicemail@example.com"
# The sender's own domain is allowed by default; these tests also e-mail example.org.
RECIPIENTS = {"twimlets/voicemail_recipients": ("@example.com, @example.org", "String")}


@pytest.fixture
def ses(ssm: Any) -> Any:
    client = boto3.client("ses")
    client.verify_email_identity(EmailAddress=SENDER)
    demo.put_parameters(ssm, demo.SSM_PATH, {"voicemail/from_email": (SENDER, "String")})
    demo.put_parameters(ssm, demo.SSM_PATH, RECIPIENTS)
    return client


def sent_emails(moto_url: str) -> list[dict[str, Any]]:
    import requests

    data = requests.get(f"{moto_url}/moto-api/data.json", timeout=5).json()
    return data.get("ses", {}).get("Message", [])


def test_menu_then_voicemail_then_transcription_email_and_sms(
    app, ses, jobs, moto_url, twilio, log_lines
):
    voicemail_url = (
        f"{TEL}/twimlets/voicemail?Email=ops%2Bvm%40example.org&NotifySms=%2B16175550100"
        "&Message=Please%20leave%20a%20message"
    )
    menu = f"{TEL}/twimlets/menu?Message=Press%202%20for%20voicemail"
    menu += f"&Options%5B2%5D={quote(voicemail_url, safe='')}"
    call = phone(
        app,
        base_path="/tel",
        caller="+16175550134",
        digits=["2"],
        transcription="Please call me back about the invoice",
    ).call(menu)
    callback = f"{TEL}/twimlets/voicemail?Email=ops%2Bvm%40example.org&NotifySms=%2B16175550100"
    assert call.verbs() == [
        ("Gather", ""),
        ("Say", "Press 2 for voicemail"),
        ("Pressed", "2"),
        ("302", voicemail_url),
        ("Say", "Please leave a message"),
        ("Record", ""),
        ("Say", "Thanks. Good bye."),
        ("Hangup", ""),
        ("Transcription", "HTTP 200"),
    ]
    record = next(step for step in call.steps if step.verb == "Record")
    assert record.attrs == {"transcribe": "true", "transcribeCallback": callback}
    assert call.requests[-1].url == callback
    assert sent_emails(moto_url) == []  # nothing is sent inside the webhook

    jobs.drain()

    (email,) = sent_emails(moto_url)
    recording = call.requests[-1].params["RecordingUrl"]
    assert email["source"] == SENDER
    assert email["destinations"]["ToAddresses"] == ["ops+vm@example.org"]
    assert email["subject"] == "New Voicemail Message from (617) 555-0134"
    assert email["body"] == (
        "You have a new voicemail from (617) 555-0134\n\n"
        "Text of the transcribed voicemail:\nPlease call me back about the invoice.\n\n"
        f"Click this link to listen to the message:\n{recording}.mp3"
    )
    (sms,) = twilio.messages
    assert sms["to"] == "+16175550100"
    assert sms["body"] == (
        f"New voicemail from (617) 555-0134: Please call me back about the invoice\n{recording}.mp3"
    )
    text = str(log_lines())
    assert "6175550134" not in text and "invoice" not in text


def test_voicemail_without_transcription_emails_on_the_recording(app, ses, jobs, moto_url):
    url = f"{EXECUTE_API}/twimlets/voicemail?Email=ops%40example.org&Transcribe=false"
    call = phone(app, caller="+19165550123").call(url)
    assert call.verbs() == [
        ("Say", "Please leave a message after the beep."),
        ("Record", ""),
        ("Say", "Thanks. Good bye."),
        ("Hangup", ""),
    ]
    jobs.drain()
    (email,) = sent_emails(moto_url)
    assert email["subject"] == "New Voicemail Message from (916) 555-0123"
    assert "Text of the transcribed voicemail" not in email["body"]


def test_failed_transcription_emails_the_link_only(app, ses, jobs, moto_url):
    url = f"{EXECUTE_API}/twimlets/voicemail?Email=ops%40example.org"
    phone(app, transcription=None).call(url)
    jobs.drain()
    (email,) = sent_emails(moto_url)
    assert email["body"].startswith("You have a new voicemail from (510) 555-1212\n\nClick this")


def test_a_failed_email_is_logged_and_retried_not_dropped(app, ssm, jobs, moto_url, log_lines):
    demo.put_parameters(ssm, demo.SSM_PATH, {"voicemail/from_email": (SENDER, "String")})
    demo.put_parameters(ssm, demo.SSM_PATH, RECIPIENTS)
    url = f"{EXECUTE_API}/twimlets/voicemail?Email=ops%40example.org&Transcribe=false"
    call = phone(app).call(url)
    assert call.verbs()[-2:] == [("Say", "Thanks. Good bye."), ("Hangup", "")]  # unaffected
    received, failed = jobs.poll_once(replay_failures=True)  # SES refuses: sender not verified
    assert (received, failed) == (1, 1)
    assert sent_emails(moto_url) == []
    lines = log_lines()
    assert any(line["message"] == "voicemail email not sent" for line in lines)
    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    voicemail.reset()
    jobs.drain()
    assert len(sent_emails(moto_url)) == 1


def test_a_notification_whose_marker_answer_was_lost_still_goes_out(
    app, ses, jobs, moto_url, aws_faults
):
    # The once-per-recording marker reached DynamoDB, its answer did not: the SDK's retry meets
    # our own marker, which must not read as "queued before".
    aws_faults.script("dynamodb:PutItem", ["lost"], match="once#")
    url = f"{EXECUTE_API}/twimlets/voicemail?Email=ops%40example.org&Transcribe=false"
    phone(app).call(url)
    jobs.drain()
    assert len(sent_emails(moto_url)) == 1


def replay(app: Any, request: Any, times: int) -> None:
    """Send a request the phone made again, signed as Twilio signs it (a retry, or a replay)."""
    from devkit.events import LambdaContext, twilio_event

    for _ in range(times):
        event = twilio_event(
            request.url, request.params, auth_token=demo.AUTH_TOKEN, routes=list(app.routes)
        )
        assert app(event, LambdaContext())["statusCode"] == 200


def test_a_recording_delivered_three_times_notifies_once(app, ses, jobs, moto_url, twilio):
    url = (
        f"{EXECUTE_API}/twimlets/voicemail?Email=ops%40example.org&Transcribe=false"
        "&NotifySms=%2B16175550100"
    )
    call = phone(app, caller="+19165550123").call(url)
    recorded = next(r for r in call.requests if "RecordingUrl" in r.params)
    replay(app, recorded, 2)
    jobs.drain()
    replay(app, recorded, 1)  # and once more after the notifications went out
    jobs.drain()
    assert len(sent_emails(moto_url)) == 1
    assert len(twilio.messages) == 1


def test_a_replayed_conference_join_texts_the_moderators_once(app, jobs, twilio):
    url = (
        f"{EXECUTE_API}/twimlets/conference?Moderators%5B%5D=%2B12125550147"
        "&EnableSmsNotifications=1&Name=standup"
    )
    call = phone(app, caller="+13105550110").call(url)
    replay(app, call.requests[0], 2)
    jobs.drain()
    assert [m["to"] for m in twilio.messages] == ["+12125550147"]
    phone(app, caller="+13105550111").call(url)  # another caller joining is another event
    jobs.drain()
    assert len(twilio.messages) == 2


def test_conference_sms_alerts_go_out_through_the_rest_api(app, ssm, jobs, twilio):
    # +44 is outside the default destination policy (see tests/functional/guards).
    demo.put_parameters(ssm, demo.SSM_PATH, {"outbound/allowed_prefixes": ("+1,+44", "String")})
    url = (
        f"{EXECUTE_API}/twimlets/conference?Moderators%5B%5D=212-555-0147"
        "&Moderators%5B%5D=%2B44%207700%20900123&EnableSmsNotifications=1&Name=standup"
    )
    call = phone(app, caller="+13105550110").call(url)
    assert ("Message", "") not in [(verb, "") for verb, _ in call.verbs()]
    assert twilio.messages == []
    jobs.drain()
    body = "+13105550110 has entered your conference.  Call the number this text came from to join."
    assert sorted((m["to"], m["body"]) for m in twilio.messages) == [
        ("+12125550147", body),
        ("+447700900123", body),
    ]
    assert {m["from"] for m in twilio.messages} == {demo.NUMBER}


# The README's recipes, built with `python -m devkit url` as the README builds them.


def devkit_url(capsys: Any, name: str, *params: str, base: str = EXECUTE_API) -> str:
    from devkit import cli

    argv = ["url", name, "--base", base]
    for param in params:
        argv += ["--param", param]
    capsys.readouterr()
    assert cli.main(argv) == 0
    return capsys.readouterr().out.strip()


def test_recipe_business_line(app, ses, jobs, moto_url, twilio, capsys):
    vm = devkit_url(capsys, "voicemail", "Email=office@example.com", "NotifySms=+14155550100")
    find = devkit_url(
        capsys,
        "findme",
        "PhoneNumbers[]=+14155550111",
        "PhoneNumbers[]=+14155550122",
        "Message=Call for Acme, press any key to answer",
        f"FailUrl={vm}",
    )
    menu = devkit_url(
        capsys,
        "menu",
        "Message=Thanks for calling Acme. For sales press 1. To leave a message press 2.",
        f"Options[1]={find}",
        f"Options[2]={vm}",
    )
    # Nobody presses a key in the whisper: the first is hung up on, the second does not answer.
    call = phone(app, digits=["1"], legs=[Leg("completed", digits=None), Leg("no-answer")]).call(
        menu
    )
    verbs = call.verbs()
    assert ("302", find) in verbs and ("302", vm) in verbs
    assert verbs[-4:] == [
        ("Record", ""),
        ("Say", "Thanks. Good bye."),
        ("Hangup", ""),
        ("Transcription", "HTTP 200"),
    ]
    assert call.verbs("callee +14155550111")[-2:] == [("No input", ""), ("Hangup", "")]
    straight = phone(app, digits=["2"]).call(menu)
    assert ("302", vm) in straight.verbs()
    jobs.drain()
    assert [e["destinations"]["ToAddresses"] for e in sent_emails(moto_url)] == [
        ["office@example.com"],
        ["office@example.com"],
    ]
    assert [m["to"] for m in twilio.messages] == ["+14155550100", "+14155550100"]


@pytest.mark.parametrize(
    ("caller_number", "expected"),
    [
        ("+15105551212", [("Dial", "+14155550100"), ("Dial ended", "completed"), ("Hangup", "")]),
        ("+14155550199", [("Dial", "+14155550100"), ("Dial ended", "completed"), ("Hangup", "")]),
        (
            "+14155550000",
            [("Say", "Sorry, you are calling from a restricted number. Good bye."), ("End", "")],
        ),
    ],
)
def test_recipe_forwarding_with_an_allow_list(app, capsys, caller_number, expected):
    sorry = devkit_url(capsys, "message", "Message=Nobody can take your call.")
    forward = devkit_url(
        capsys,
        "forward",
        "PhoneNumber=+14155550100",
        "AllowedCallers[]=+1 (510) 555-1212",
        "AllowedCallers[]=415-555-0199",
        "Timeout=25",
        f"FailUrl={sorry}",
    )
    assert phone(app, caller=caller_number).call(forward).verbs() == expected
    busy = phone(app, caller="+15105551212", legs=[Leg("busy")]).call(forward)
    assert busy.verbs()[-3:] == [("302", sorry), ("Say", "Nobody can take your call."), ("End", "")]


def test_recipe_conference_line_with_moderators(app, music, jobs, twilio, capsys):
    url = devkit_url(
        capsys,
        "conference",
        "Name=weekly",
        "Password=4321",
        "Moderators[]=+14155550111",
        "Moderators[]=+14155550122",
        "EnableSmsNotifications=true",
        "Music=classical",
    )
    guest = phone(app, caller="+15105551212", digits=["4321"]).call(url)
    room = next(step for step in guest.steps if step.verb == "Conference")
    assert (room.text, room.attrs["startConferenceOnEnter"]) == ("weekly", "false")
    assert (
        room.attrs["waitUrl"]
        == f"{EXECUTE_API}/twimlets/holdmusic?Bucket=com.twilio.music.classical"
    )
    host = phone(app, caller="+14155550122", digits=["4321"]).call(url)
    room = next(step for step in host.steps if step.verb == "Conference")
    assert room.attrs["startConferenceOnEnter"] == "true"
    jobs.drain()
    assert sorted(m["to"] for m in twilio.messages) == ["+14155550111", "+14155550122"]


@pytest.mark.slow
def test_phone_over_http_against_chalice_local(ssm, twilio, moto_url, fake_twilio, music):
    import subprocess
    import sys
    from pathlib import Path

    from devkit.phone import OverHttp
    from devkit.ssm_extension import ExtensionServer
    from devkit.stack import EXTENSION_PORT, app_environment, wait_for_port

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    # The dev stage reads its parameters through the Lambda extension's port, as in Lambda.
    extension = ExtensionServer(ssm, token=demo.SESSION_TOKEN, port=EXTENSION_PORT)
    extension.start()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("chalice")),
            "--project-dir",
            str(Path(__file__).resolve().parents[3]),
            "local",
            "--stage",
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-autoreload",
        ],
        env=app_environment(moto_url, fake_twilio.url, base),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, process=process)
        closed = f"{base}/twimlets/message?Message=We%20are%20closed"
        menu = f"{base}/twimlets/menu?Message=Press%201&Options%5B1%5D={quote(closed, safe='')}"
        call = Phone(OverHttp(demo.AUTH_TOKEN), digits=["7", "1"]).call(menu)
        hold = Phone(OverHttp(demo.AUTH_TOKEN)).call(f"{base}/twimlets/conference?Music=ambient")
    finally:
        process.terminate()
        process.wait(timeout=10)
        extension.stop()
    assert call.verbs() == [
        ("Gather", ""),
        ("Say", "Press 1"),
        ("Pressed", "7"),
        ("Say", "I'm sorry, that wasn't a valid option."),
        ("Gather", ""),
        ("Say", "Press 1"),
        ("Pressed", "1"),
        ("302", closed),
        ("Say", "We are closed"),
        ("End", ""),
    ]
    assert sorted(text for verb, text in hold.verbs("hold") if verb == "Play") == [
        f"https://{MUSIC}.s3.amazonaws.com/a.mp3",
        f"https://{MUSIC}.s3.amazonaws.com/dir%2Fc+d.wav",
    ]
