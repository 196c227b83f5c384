"""Rules every twimlet shares: reading inputs, Say or Play, texts, URL encoding, redirects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict
from twilio.twiml.voice_response import VoiceResponse

from chalicelib import twimlets
from chalicelib.twimlets import common
from chalicelib.webhooks.signature import SignatureError, verify
from chalicelib.webhooks.urls import query_variants
from devkit.events import twilio_event

from .support import assert_twiml, request

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("https://example.org/vm", "https%3A%2F%2Fexample.org%2Fvm"),
        ("+16175550102", "%2B16175550102"),
        ("Call for Acme", "Call+for+Acme"),
        ("a~b_c.d-e*f", "a%7Eb_c.d-e%2Af"),
        ("café", "caf%C3%A9"),
        ("PhoneNumbers[]", "PhoneNumbers%5B%5D"),
    ],
)
def test_php_urlencode(value, encoded):
    assert common.php_urlencode(value) == encoded


def test_generated_urls_validate_in_the_signature_checks_candidates():
    # What API Gateway hands back after Twilio requests a generated URL: the decoded query.
    query = [("Dial", "true"), ("FailUrl", "https://x.org/~me/a b"), ("PhoneNumbers[]", "+1")]
    generated = common.encode_query(query)
    assert "%7Eme" in generated
    multi: dict[str, list[str]] = {}
    for name, value in query:
        multi.setdefault(name, []).append(value)
    variants = query_variants(multi)
    assert generated in variants
    assert generated.replace("%7E", "~") == variants[0]  # canonical still first


def test_url_is_absolute_under_the_base():
    inputs = request(base="https://abc.execute-api.us-east-1.amazonaws.com/api")
    assert inputs.url("whisper", [("Message", "Hi there")]) == (
        "https://abc.execute-api.us-east-1.amazonaws.com/api/twimlets/whisper?Message=Hi+there"
    )
    assert inputs.url("holdmusic") == (
        "https://abc.execute-api.us-east-1.amazonaws.com/api/twimlets/holdmusic"
    )


def test_configuration_comes_from_the_query_only():
    inputs = request("Message=from+query", {"Message": "from body", "PhoneNumber": "+1"})
    assert inputs.conf("Message") == "from query"
    assert inputs.conf("PhoneNumber") is None
    assert not inputs.is_set("PhoneNumber")


def test_twilio_fields_come_from_query_or_body_and_the_body_wins():
    inputs = request("Digits=1&From=%2B15551230000", {"Digits": "2"})
    assert inputs.field("Digits") == "2"
    assert inputs.field("From") == "+15551230000"
    assert inputs.field("To") == ""
    assert not inputs.has_field("To")
    assert inputs.first_field("To", "From") == "+15551230000"


def test_a_field_given_as_an_array_reads_as_missing():
    inputs = request("PhoneNumber[]=%2B1&Digits[]=1")
    assert inputs.conf("PhoneNumber") is None
    assert inputs.field("Digits") == ""


def _said(value, *, trimmed, default=None):
    response = VoiceResponse()
    common.add_message(response, value, trimmed=trimmed, default=default)
    return str(response)


@pytest.mark.parametrize(
    ("value", "trimmed", "expected"),
    [
        ("Hello", True, "<Response><Say>Hello</Say></Response>"),
        ("  HTTPS://x/a.mp3 ", True, "<Response><Play>  HTTPS://x/a.mp3 </Play></Response>"),
        ("httpfoo", False, "<Response><Play>httpfoo</Play></Response>"),
        ("  ", True, "<Response><Say>default</Say></Response>"),
        ("  ", False, "<Response><Say>  </Say></Response>"),
        ("", False, "<Response><Say>default</Say></Response>"),
        (None, True, "<Response><Say>default</Say></Response>"),
        ("0", True, "<Response><Say>0</Say></Response>"),
        ("0", False, "<Response><Say>0</Say></Response>"),
        ("It\\'s \\\\ ok", True, "<Response><Say>It's \\ ok</Say></Response>"),
        ("Tom &amp; Jerry &eacute;", True, "<Response><Say>Tom &amp; Jerry é</Say></Response>"),
        ("a<b>\x07c", True, "<Response><Say>a&lt;b&gt;c</Say></Response>"),
        ("a\\0b", True, "<Response><Say>ab</Say></Response>"),
    ],
)
def test_say_or_play(value, trimmed, expected):
    assert_twiml(_said(value, trimmed=trimmed, default="default"), expected)


def test_say_or_play_without_default_says_nothing():
    assert_twiml(_said("  ", trimmed=True), "<Response/>")


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [(None, 20, "20"), ("", 20, "20"), ("0", 60, "60"), ("abc", 20, "abc"), ("30", 20, "30")],
)
def test_timeout_passes_truthy_values_unvalidated(value, default, expected):
    assert common.timeout(value, default) == expected


@pytest.mark.parametrize(
    ("number", "digits"),
    [
        ("+1 (303) 555-0170", "3035550170"),
        ("303-555-0170", "3035550170"),
        ("13035550170", "3035550170"),
        ("+447700900123", "447700900123"),
        ("anonymous", ""),
        ("", ""),
    ],
)
def test_digits(number, digits):
    assert common.digits(number) == digits


@pytest.mark.parametrize(
    ("location", "safe"),
    [
        ("https://example.org/busy.xml", "https://example.org/busy.xml"),
        ("https://x.org/a\r\nSet-Cookie: a=b", "https://x.org/aSet-Cookie:%20a=b"),
        ("https://x.org/café", "https://x.org/caf%C3%A9"),
        ("/relative?x=1", "/relative?x=1"),
    ],
)
def test_redirect_locations_cannot_split_headers(location, safe):
    response = common.render(common.Redirect(location))
    assert response.status_code == 302
    assert response.body == ""
    assert response.headers["Location"] == safe


def test_unknown_names_answer_404():
    response = twimlets.answer_for("nope")(None, None)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")
    for name in ("__init__", "common", "phpargs", "Message", "MESSAGE"):
        assert twimlets.answer_for(name)(None, None).status_code == 404


def test_every_twimlet_has_an_answer():
    names = ["message", "echo", "forward", "callme", "simulring", "findme", "whisper"]
    names += ["menu", "conference", "voicemail", "holdmusic"]
    assert sorted(twimlets.TWIMLETS) == sorted(names)
    for name in twimlets.TWIMLETS:
        assert callable(twimlets.answer_for(name))


def test_twimlet_modules_are_imported_on_first_use_only():
    # A /voice cold start must not pay for eleven twimlets, nor holdmusic's import for boto3.
    code = (
        "import sys, app; from chalicelib import twimlets; "
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('chalicelib.twimlets.')); "
        "print(loaded()); twimlets.answer_for('menu'); print(loaded())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    before, after = result.stdout.splitlines()[-2:]
    assert before == "[]"
    assert after == "['chalicelib.twimlets.common', 'chalicelib.twimlets.menu']"
    code = "import sys, chalicelib.twimlets.holdmusic; print('boto3' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_a_signed_request_to_a_generated_url_with_a_tilde_verifies():
    url = "https://voice.example.com/twimlets/voicemail?" + common.encode_query(
        [("Email", "~ops@example.org")]
    )
    assert "%7Eops" in url
    routes = ["/twimlets/{name}"]
    event = twilio_event(url, {"RecordingUrl": "x"}, auth_token="t", routes=routes)
    verified = verify(
        event, CaseInsensitiveDict(event["headers"]), event["body"].encode(), "t", None
    )
    assert verified.url == url
    assert verified.base_url == "https://voice.example.com"
    tampered = twilio_event(url, {"RecordingUrl": "x"}, auth_token="t", routes=routes)
    tampered["multiValueQueryStringParameters"]["Email"] = ["~evil@example.org"]
    with pytest.raises(SignatureError):
        verify(tampered, CaseInsensitiveDict(tampered["headers"]), b"RecordingUrl=x", "t", None)
