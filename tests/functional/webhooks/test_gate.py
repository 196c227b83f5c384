"""Signed webhooks end to end: real API Gateway events, parameters from the moto server."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.aws import clients, parameters
from chalicelib.core import settings
from chalicelib.webhooks import gate
from devkit import demo
from devkit.events import rest_event, twilio_event
from tests.functional.conftest import EXECUTE_API

HEADER = '<?xml version="1.0" encoding="UTF-8"?>'
HELLO = f"{HEADER}<Response><Say>Hello World</Say></Response>"
CALL = demo.CALL
SMS = {
    "MessageSid": "SM" + "b" * 32,
    "AccountSid": demo.ACCOUNT_SID,
    "From": "+15105551212",
    "To": demo.NUMBER,
    "Body": "secret body text",
    "NumMedia": "0",
    "FromZip": "",
}


def header(response, name):
    return {k.lower(): v for k, v in response["headers"].items()}.get(name.lower())


def test_voice_answers_hello_world(caller):
    response = caller.webhook("/voice", CALL)
    assert response["statusCode"] == 200
    assert response["body"] == HELLO
    assert header(response, "Content-Type").startswith("text/xml")


def test_voice_greeting_is_configurable_and_escaped(caller, ssm):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/voice/greeting",
        Value="Hi & welcome <b>\x07",
        Type="String",
        Overwrite=True,
    )
    response = caller.webhook("/voice", CALL)
    assert response["body"] == (
        f"{HEADER}<Response><Say>Hi &amp; welcome &lt;b&gt;</Say></Response>"
    )


def test_get_webhook_without_content_type(caller):
    query = "&".join(f"{k}={v}" for k, v in CALL.items()).replace("+", "%2B")
    response = caller.webhook(f"/voice?{query}", method="GET")
    assert response["statusCode"] == 200
    assert response["body"] == HELLO


def test_sms_without_auto_reply_is_empty(caller):
    response = caller.webhook("/sms", SMS)
    assert response["statusCode"] == 200
    assert response["body"] == f"{HEADER}<Response />"


def test_sms_auto_reply(caller, ssm):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/sms/auto_reply", Value="Thanks, we'll reply soon.", Type="String"
    )
    response = caller.webhook("/sms", SMS)
    assert response["body"] == (
        f"{HEADER}<Response><Message>Thanks, we'll reply soon.</Message></Response>"
    )


@pytest.mark.parametrize(
    ("base", "public_url"),
    [
        (EXECUTE_API, None),
        ("https://voice.example.com/tel", None),
        ("https://voice.example.com", None),
        ("https://voice.example.com", "https://voice.example.com"),
        ("https://voice.example.com/tel", "https://voice.example.com/tel"),
    ],
)
def test_entry_points(caller, monkeypatch, base, public_url):
    if public_url:
        monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", public_url)
    assert caller.webhook("/voice", CALL, base=base)["statusCode"] == 200
    wrong_host = base.replace("voice.example.com", "other.example.com").replace("abc123", "zzz")
    response = caller.webhook("/voice", CALL, base=base, sign_url=wrong_host + "/voice")
    assert response["statusCode"] == 403


def test_public_url_validates_requests_through_another_host(caller, monkeypatch):
    # A proxy or CDN in front of API Gateway: Twilio signed the public URL, the event shows
    # the execute-api host.
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com")
    response = caller.webhook("/voice", CALL, sign_url="https://voice.example.com/voice")
    assert response["statusCode"] == 200


def test_chalice_local_events_need_the_public_url(caller, monkeypatch):
    local = "http://127.0.0.1:8000"
    event = twilio_event(
        f"{local}/voice", CALL, auth_token=demo.AUTH_TOKEN, routes=caller.routes, local=True
    )
    assert caller.invoke(event)["statusCode"] == 403
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", local)
    settings.reset()  # settings are read once per container
    assert caller.invoke(event)["statusCode"] == 200


@pytest.mark.parametrize(
    "query",
    [
        "Greeting=Hello%20World",
        "Greeting=Hello+World",
        "To=%2B15105551212",
        "To=+15105551212",
        "Message%5B0%5D=Hi",
        "Message[0]=Hi",
        "FailUrl=&Timeout=20",
    ],
)
def test_query_strings(caller, query):
    assert caller.webhook(f"/voice?{query}", CALL)["statusCode"] == 200
    response = caller.webhook(f"/voice?{query}", CALL, sign_url=f"{EXECUTE_API}/voice?x=1")
    assert response["statusCode"] == 403


def test_repeated_fields_and_base64_body(caller):
    params = [*SMS.items(), ("MediaUrl0", "https://a"), ("MediaUrl0", "https://b")]
    assert caller.webhook("/sms", params, base64_body=True)["statusCode"] == 200


@pytest.mark.parametrize("path", ["/voice", "/sms", "/fallback"])
def test_unsigned_and_badly_signed_requests_are_refused(caller, log_lines, path):
    for signature in ("", "bm90IGEgc2lnbmF0dXJl"):
        response = caller.webhook(path, CALL, signature=signature)
        assert response["statusCode"] == 403
        assert header(response, "Content-Type").startswith("text/plain")
        assert "Response" not in response["body"]
    wrong_token = caller.webhook(path, CALL, token="not-the-token")
    assert wrong_token["statusCode"] == 403
    warnings = [line for line in log_lines() if line["message"] == "webhook signature rejected"]
    assert len(warnings) == 3
    assert warnings[0]["url"] == f"{EXECUTE_API}{path}"
    assert warnings[0]["level"] == "WARNING"


def test_a_refused_webhook_logs_parameter_names_not_values(caller, log_lines):
    """A conference Password, a voicemail Email or echo's TwiML must not reach the logs."""
    path = "/twimlets/conference?Password=hunter2&Email=boss%40example.com&Moderators%5B%5D=x"
    response = caller.webhook(path, {**CALL, "Digits": "8642"}, token="not-the-token")
    assert response["statusCode"] == 403
    (line,) = [row for row in log_lines() if row["message"] == "webhook signature rejected"]
    text = json.dumps(line)
    assert "hunter2" not in text and "example.com" not in text and "8642" not in text
    assert line["url"] == f"{EXECUTE_API}/twimlets/conference"
    assert line["parameters"] == sorted(
        {"Password", "Email", "Moderators[]", "Digits", *CALL}, key=str
    )


def test_fail_closed_when_store_unreachable(caller, monkeypatch, log_lines):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on discard
    parameters.reset()
    started = time.monotonic()
    response = caller.webhook("/voice", CALL)
    assert time.monotonic() - started < 8
    assert response["statusCode"] == 500
    assert response["body"] == "Service unavailable"
    assert header(response, "Content-Type").startswith("text/plain")
    assert any("parameter store unreachable" in line["message"] for line in log_lines())


def test_fail_closed_when_store_hangs(caller, monkeypatch, hanging_endpoint):
    # Accepts connections and never answers: the read timeout must end it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", hanging_endpoint)
    parameters.reset()
    started = time.monotonic()
    response = caller.webhook("/voice", CALL)
    elapsed = time.monotonic() - started
    assert response["statusCode"] == 500
    assert elapsed < 8


def test_fail_closed_when_token_missing(caller, ssm, log_lines):
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/twilio/auth_token")
    response = caller.webhook("/voice", CALL)
    assert response["statusCode"] == 500
    lines = log_lines()
    refused = [line for line in lines if line["message"].startswith("webhook refused")]
    assert refused[0]["parameter"] == "twilio/auth_token"


def test_fail_closed_without_ssm_path(caller, monkeypatch, log_lines):
    monkeypatch.delenv("SWITCHBOARD_SSM_PATH")
    assert caller.webhook("/voice", CALL)["statusCode"] == 500
    assert any(line.get("setting") == "SWITCHBOARD_SSM_PATH" for line in log_lines())


def test_fallback_apologises_when_the_store_is_down(caller, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(parameters._cache, "_clock", lambda: clock[0])
    parameters._cache.clear()
    assert caller.webhook("/fallback", CALL)["statusCode"] == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clients.reset()  # the store goes away: the next client finds nothing there
    clock[0] = 300 + 3600 + 1  # past the TTL and the stale-if-error window
    response = caller.webhook("/fallback", CALL)
    assert response["statusCode"] == 200
    assert "<Say>We are sorry" in response["body"]
    assert caller.webhook("/voice", CALL)["statusCode"] == 500
    assert caller.webhook("/fallback", CALL, token="wrong")["statusCode"] == 403


def test_stale_values_serve_within_max_stale(caller, monkeypatch, log_lines):
    clock = [0.0]
    monkeypatch.setattr(parameters._cache, "_clock", lambda: clock[0])
    parameters._cache.clear()
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clients.reset()  # the store goes away: the next client finds nothing there
    clock[0] = 301
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    assert any(line["message"].startswith("parameter refresh failed") for line in log_lines())


def test_fallback_with_nothing_cached_fails_closed(caller, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    parameters.reset()
    assert caller.webhook("/fallback", CALL)["statusCode"] == 500


def rotate(ssm, value="rotated-demo-token"):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/twilio/auth_token", Value=value, Type="SecureString", Overwrite=True
    )


def test_a_rotated_token_passes_on_its_first_request(caller, ssm, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(parameters._cache, "_clock", lambda: clock[0])
    parameters._cache.clear()
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    rotate(ssm)  # Twilio signs with the new token at once; our cache holds the old one
    clock[0] = 10
    assert caller.webhook("/voice", CALL, token="rotated-demo-token")["statusCode"] == 200
    assert caller.webhook("/voice", CALL, token="rotated-demo-token")["statusCode"] == 200
    assert caller.webhook("/voice", CALL)["statusCode"] == 403  # the old one is gone


def test_forged_signatures_force_at_most_one_read_per_ten_seconds(caller, ssm, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(parameters._allowance(gate.TOKEN), "_clock", lambda: now[0])
    reads = []
    real = parameters.fetch_one
    monkeypatch.setattr(parameters, "fetch_one", lambda name: reads.append(name) or real(name))
    for second in range(30):
        now[0] = float(second)
        assert caller.webhook("/voice", CALL, token="forged")["statusCode"] == 403
    assert len(reads) == 3  # at 0, 10 and 20 s
    rotate(ssm)
    now[0] = 29.5  # within ten seconds of the last forced read: the new token waits
    assert caller.webhook("/voice", CALL, token="rotated-demo-token")["statusCode"] == 403
    now[0] = 30.0
    assert caller.webhook("/voice", CALL, token="rotated-demo-token")["statusCode"] == 200


def test_what_twilio_never_sends_is_refused_before_the_secrets_are_read(
    caller, monkeypatch, log_lines
):
    monkeypatch.setattr(parameters, "load", lambda *a, **k: pytest.fail("secrets were read"))
    big = {"Body": "x" * (64 * 1024)}
    response = caller.webhook("/sms", big)
    assert response["statusCode"] == 413
    assert header(response, "Content-Type").startswith("text/plain")
    response = caller.webhook("/voice", CALL, signature="é" * 28)
    assert response["statusCode"] == 403
    assert caller.webhook("/voice", CALL, signature="not base64")["statusCode"] == 403
    assert [line["status"] for line in log_lines() if "status" in line] == [413, 403, 403]


def test_logs_are_json_with_context_and_no_secrets(caller, ssm, log_lines, capsys):
    caller.webhook("/sms", SMS)
    caller.webhook("/voice", CALL, signature="bad")
    caller.webhook("/voice", CALL)
    lines = log_lines()
    access = [line for line in lines if line["message"] == "request handled"]
    assert [line["status"] for line in access] == [200, 403, 200]
    assert access[0]["message_sid"] == SMS["MessageSid"]
    assert access[2]["call_sid"] == CALL["CallSid"]
    for line in access:
        assert {"timestamp", "level", "route", "request_id", "outcome", "latency_ms"} <= set(line)
    text = "\n".join(map(str, lines))
    for secret in (demo.AUTH_TOKEN, SMS["Body"], "+15105551212", "5105551212"):
        assert secret not in text


def test_unknown_method_and_route_shape(caller):
    event = rest_event("DELETE", f"{EXECUTE_API}/voice", routes=caller.routes)
    assert caller.invoke(event)["statusCode"] == 405


def test_too_many_fields_are_refused_before_the_secrets_are_read(caller, ssm):
    # No token in the store: reading the secrets would fail (500); 413 must come first.
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/twilio/auth_token")
    many = [(f"F{i}", "") for i in range(300)]
    assert caller.webhook("/sms", many)["statusCode"] == 413
    assert caller.webhook("/sms", many, base64_body=True)["statusCode"] == 413
    assert caller.webhook("/sms", SMS)["statusCode"] == 500  # the store is what fails here


@pytest.mark.parametrize("digest", ["%C3%A9", "%C3%A9" * 64, "%00", "%ED%A0%80"])
def test_a_body_hash_that_is_not_hex_is_403_not_500(caller, digest):
    from twilio.request_validator import RequestValidator

    from devkit.events import twilio_headers

    url = f"{EXECUTE_API}/voice?bodySHA256={digest}"
    signature = RequestValidator(demo.AUTH_TOKEN).compute_signature(url, {})
    headers = {**twilio_headers(url, signature, form=False), "Content-Type": "application/json"}
    event = rest_event("POST", url, routes=caller.routes, body='{"a": 1}', headers=headers)
    response = caller.invoke(event)
    assert response["statusCode"] == 403
