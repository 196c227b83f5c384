"""Webhooks signed with a SharedKey (Twilio's Webhooks API, public beta): HMAC-SHA256 with a
key kept in the parameter store, beside the auth token's HMAC-SHA1; real API Gateway events
signed with twilio's RequestValidator, parameters from the moto server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import requests
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256

from chalicelib.aws import parameters
from chalicelib.webhooks import gate
from devkit import demo
from devkit.events import SharedKey, twilio_event
from devkit.twilio_callbacks import Callback
from tests.functional.conftest import EXECUTE_API
from tests.functional.messaging.test_messaging import TO, wait_for
from tests.functional.webhooks.test_gate import CALL, HELLO, SMS

KEYS = f"{demo.SSM_PATH}/twilio/webhook_signing_keys"
OLD = SharedKey("webhooks_sharedkey_" + "a" * 16, "old-demo-shared-key-secret")
NEW = SharedKey("webhooks_sharedkey_" + "b" * 16, "new-demo-shared-key-secret==")


def store(ssm, *keys: SharedKey, separator: str = "\n") -> None:
    value = separator.join(f"{key.key_id}={key.secret}" for key in keys)
    ssm.put_parameter(Name=KEYS, Value=value, Type="SecureString", Overwrite=True)


def rejections(log_lines) -> list[dict]:
    return [line for line in log_lines() if line["message"] == "webhook signature rejected"]


def test_shared_key_signed_voice_and_sms_are_accepted(caller, ssm):
    store(ssm, OLD)
    response = caller.webhook("/voice", CALL, shared_key=OLD)
    assert response["statusCode"] == 200
    assert response["body"] == HELLO
    assert caller.webhook("/sms", SMS, shared_key=OLD)["statusCode"] == 200
    # A GET, its parameters in the query, and a twimlet: the same gate.
    query = "&".join(f"{k}={v}" for k, v in CALL.items()).replace("+", "%2B")
    assert caller.webhook(f"/voice?{query}", method="GET", shared_key=OLD)["statusCode"] == 200
    path = "/twimlets/message?Message%5B0%5D=Hello"
    assert caller.webhook(path, CALL, shared_key=OLD)["statusCode"] == 200


def test_a_wrong_secret_is_refused(caller, ssm, log_lines):
    store(ssm, OLD)
    forged = SharedKey(OLD.key_id, "not-the-secret")
    assert caller.webhook("/voice", CALL, shared_key=forged)["statusCode"] == 403
    assert caller.webhook("/sms", SMS, shared_key=forged)["statusCode"] == 403
    # Signed with the auth token, as HMAC-SHA256, and claiming the key: still refused.
    token = SharedKey(OLD.key_id, demo.AUTH_TOKEN)
    assert caller.webhook("/voice", CALL, shared_key=token)["statusCode"] == 403
    lines = rejections(log_lines)
    assert [line["reason"] for line in lines] == ["signature does not match"] * 3
    assert all(line["signing_key"] == OLD.key_id for line in lines)
    assert "not-the-secret" not in str(lines) and OLD.secret not in str(lines)


def test_the_auth_token_signature_still_works_beside_shared_keys(caller, ssm):
    store(ssm, OLD)
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    assert caller.webhook("/voice", CALL, token="not-the-token")["statusCode"] == 403
    # A SharedKey's signature without the settings header is refused (44 characters, no
    # algorithm to read them with), and so is the auth token's HMAC-SHA1 under a header that
    # says HMAC_SHA256.
    assert caller.webhook("/voice", CALL, shared_key=OLD, settings="")["statusCode"] == 403
    sha1 = caller.webhook("/voice", CALL, settings=OLD.settings_header())
    assert sha1["statusCode"] == 403


@pytest.mark.parametrize(
    "settings",
    [
        f"key={OLD.key_id},algorithm=HMAC_SHA1",
        f"key={OLD.key_id}",
        "algorithm=HMAC_SHA1",
        "key=webhooks_sharedkey_unknown,algorithm=HMAC_SHA1",
    ],
)
def test_hmac_sha1_under_the_settings_header_uses_the_auth_token(caller, ssm, settings):
    store(ssm, OLD)
    assert caller.webhook("/voice", CALL, settings=settings)["statusCode"] == 200
    response = caller.webhook("/voice", CALL, token="not-the-token", settings=settings)
    assert response["statusCode"] == 403


def test_hmac_sha1_with_a_named_key_also_takes_that_keys_secret(caller, ssm):
    # What twilio's libraries do with a settings header: the key's secret, the header's
    # algorithm. A Setting naming a key and HMAC_SHA1 signs that way.
    store(ssm, OLD)
    sha1 = SharedKey(OLD.key_id, OLD.secret, HMAC_SHA1)
    assert caller.webhook("/voice", CALL, shared_key=sha1)["statusCode"] == 200
    unknown = SharedKey(NEW.key_id, NEW.secret, HMAC_SHA1)
    assert caller.webhook("/voice", CALL, shared_key=unknown)["statusCode"] == 403


def test_an_unknown_key_is_refused_and_read_afresh_at_most_every_ten_seconds(
    caller, ssm, monkeypatch, log_lines
):
    store(ssm, OLD)
    now = [0.0]
    monkeypatch.setattr(parameters._allowance(gate.SIGNING_KEYS), "_clock", lambda: now[0])
    reads = []
    real = parameters.fetch_one
    monkeypatch.setattr(parameters, "fetch_one", lambda name: reads.append(name) or real(name))
    for second in range(30):
        now[0] = float(second)
        assert caller.webhook("/voice", CALL, shared_key=NEW)["statusCode"] == 403
    assert reads == [KEYS] * 3  # at 0, 10 and 20 s
    lines = rejections(log_lines)
    assert {line["reason"] for line in lines} == {"unknown signing key"}
    assert lines[0]["signing_key"] == NEW.key_id
    # The auth token's own forced read is untouched by them: a rotated token passes at once.
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/twilio/auth_token",
        Value="rotated",
        Type="SecureString",
        Overwrite=True,
    )
    assert caller.webhook("/voice", CALL, token="rotated")["statusCode"] == 200


def test_a_key_added_after_the_cache_filled_passes_on_its_first_request(caller, ssm, monkeypatch):
    store(ssm, OLD)
    assert caller.webhook("/voice", CALL, shared_key=OLD)["statusCode"] == 200  # cache filled
    store(ssm, OLD, NEW)  # a minute ago: the cache still holds OLD alone
    reads = []
    real = parameters.fetch_one
    monkeypatch.setattr(parameters, "fetch_one", lambda name: reads.append(name) or real(name))
    assert caller.webhook("/voice", CALL, shared_key=NEW)["statusCode"] == 200
    assert caller.webhook("/sms", SMS, shared_key=NEW)["statusCode"] == 200
    assert caller.webhook("/voice", CALL, shared_key=OLD)["statusCode"] == 200
    assert reads == [KEYS]  # once: what it read replaced the cached value


def test_no_keys_configured_refuses_shared_key_webhooks_without_failing(caller, ssm):
    # Not a 500: the deployment is fine for the auth token's webhooks.
    assert caller.webhook("/voice", CALL, shared_key=OLD)["statusCode"] == 403
    assert caller.webhook("/voice", CALL)["statusCode"] == 200


def test_two_keys_during_a_rotation_then_the_old_one_removed(caller, ssm, log_lines):
    store(ssm, OLD, NEW, separator=",")
    assert caller.webhook("/voice", CALL, shared_key=OLD)["statusCode"] == 200
    assert caller.webhook("/voice", CALL, shared_key=NEW)["statusCode"] == 200
    # The access log says which key signed: once the old one stops showing, its entry can go.
    access = [line for line in log_lines() if line["message"] == "request handled"]
    assert [line.get("signing_key") for line in access] == [OLD.key_id, NEW.key_id]
    store(ssm, NEW)
    parameters.reset()  # past the TTL (a new container here)
    assert caller.webhook("/voice", CALL, shared_key=OLD)["statusCode"] == 403
    assert caller.webhook("/voice", CALL, shared_key=NEW)["statusCode"] == 200
    assert caller.webhook("/voice", CALL)["statusCode"] == 200  # the auth token, untouched


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ("key=,algorithm=HMAC_SHA256", "malformed X-Twilio-Webhooks-Signature-Settings"),
        ("algorithm=HMAC_SHA256", "HMAC_SHA256 without a signing key"),
        (
            f"key={OLD.key_id};algorithm=HMAC_SHA256",
            "malformed X-Twilio-Webhooks-Signature-Settings",
        ),
        (
            f"key={OLD.key_id},key={NEW.key_id},algorithm=HMAC_SHA256",
            "malformed X-Twilio-Webhooks-Signature-Settings",
        ),
        (
            f"key={OLD.key_id},algorithm=HMAC_SHA256,algorithm=HMAC_SHA1",
            "malformed X-Twilio-Webhooks-Signature-Settings",
        ),
        ("key=a b,algorithm=HMAC_SHA256", "malformed X-Twilio-Webhooks-Signature-Settings"),
        ("key=é,algorithm=HMAC_SHA256", "malformed X-Twilio-Webhooks-Signature-Settings"),
        (
            "key=" + "k" * 300 + ",algorithm=HMAC_SHA256",
            "malformed X-Twilio-Webhooks-Signature-Settings",
        ),
        ("garbage", "malformed X-Twilio-Webhooks-Signature-Settings"),
        (f"key={OLD.key_id},algorithm=HMAC_SHA512", "unsupported signature algorithm"),
        (f"key={OLD.key_id},algorithm=RSA", "unsupported signature algorithm"),
    ],
)
def test_a_malformed_or_unsupported_settings_header_is_403_before_the_secrets_are_read(
    caller, ssm, monkeypatch, log_lines, settings, reason
):
    store(ssm, OLD)
    monkeypatch.setattr(parameters, "load", lambda *a, **k: pytest.fail("secrets were read"))
    response = caller.webhook("/voice", CALL, shared_key=OLD, settings=settings)
    assert response["statusCode"] == 403
    assert response["body"] == gate.FORBIDDEN
    (line,) = rejections(log_lines)
    assert line["reason"] == reason


def test_an_unsupported_algorithm_is_named_in_the_log_only_when_readable(caller, ssm, log_lines):
    store(ssm, OLD)
    caller.webhook(
        "/voice", CALL, shared_key=OLD, settings=f"key={OLD.key_id},algorithm=HMAC_SHA512"
    )
    caller.webhook("/voice", CALL, shared_key=OLD, settings=f"key={OLD.key_id},algorithm=<x>")
    first, second = rejections(log_lines)
    assert first["algorithm"] == "HMAC_SHA512"
    assert "algorithm" not in second and "<x>" not in str(second)


def test_the_algorithm_is_read_regardless_of_case(caller, ssm):
    # As twilio's RequestValidator reads it.
    store(ssm, OLD)
    settings = f" key={OLD.key_id} , algorithm=hmac_sha256 "
    assert caller.webhook("/voice", CALL, shared_key=OLD, settings=settings)["statusCode"] == 200


def test_the_local_twilio_signs_its_callbacks_with_a_shared_key_when_configured(
    caller, ssm, twilio, monkeypatch
):
    store(ssm, NEW)
    collected: list[Callback] = []
    monkeypatch.setattr(twilio.callbacks, "transport", collected.append)
    config = {
        "callback_delay": 0,
        "signing_key": {"key": NEW.key_id, "secret": NEW.secret, "algorithm": HMAC_SHA256},
    }
    assert requests.post(f"{twilio.url}/_fake/config", json=config, timeout=5).status_code == 200
    shown = requests.get(f"{twilio.url}/_fake/config", timeout=5).json()
    assert shown["signing_key"] == {"key": NEW.key_id, "algorithm": HMAC_SHA256}  # no secret
    assert caller.api("/messages", {"to": TO, "body": "hi"})["statusCode"] == 201
    assert wait_for(lambda: len(collected) == 2)  # sent, delivered
    for callback in collected:
        assert callback.settings == NEW.settings_header()
        event = twilio_event(
            callback.url,
            callback.params,
            auth_token="unused",
            routes=caller.routes,
            signature=callback.signature,
            settings=callback.settings,
        )
        assert caller.invoke(event)["statusCode"] == 200
        forged = twilio_event(
            callback.url,
            callback.params,
            auth_token="unused",
            routes=caller.routes,
            signature=callback.signature,
            settings=OLD.settings_header(),
        )
        assert caller.invoke(forged)["statusCode"] == 403
    for wrong in ({"key": "k", "secret": "s", "algorithm": "RSA"}, {"key": "k"}, "k=s"):
        answer = requests.post(f"{twilio.url}/_fake/config", json={"signing_key": wrong}, timeout=5)
        assert answer.status_code == 400
    answer = requests.post(f"{twilio.url}/_fake/config", json={"callback_delay": 0.1}, timeout=5)
    assert answer.json()["signing_key"] == {"key": NEW.key_id, "algorithm": HMAC_SHA256}  # kept
    twilio.reset()  # back to the auth token
    assert twilio.callbacks.settings()["signing_key"] is None


# --- through the Lambda extension (parameters read by name over localhost) ------------------


@pytest.fixture
def extension(ssm, app, monkeypatch):
    import boto3

    from devkit.ssm_extension import ExtensionServer

    with ExtensionServer(boto3.client("ssm"), token=demo.SESSION_TOKEN) as server:
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", demo.SESSION_TOKEN)
        parameters.reset()
        yield server


def test_through_the_extension_the_keys_are_one_more_name_read_on_demand(
    caller, ssm, extension, monkeypatch
):
    store(ssm, OLD)
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    # the auth token's path reads no keys (twilio/auth_token, voice/ring_clients, voice/greeting)
    assert extension.requests == 3
    assert caller.webhook("/voice", CALL, shared_key=OLD)["statusCode"] == 200
    assert extension.requests == 4  # twilio/webhook_signing_keys, then cached
    store(ssm, OLD, NEW)  # the extension's cache and ours hold OLD alone
    assert caller.webhook("/voice", CALL, shared_key=NEW)["statusCode"] == 200  # forced read
    assert caller.webhook("/voice", CALL, shared_key=NEW)["statusCode"] == 200
    assert extension.requests == 4


def test_keys_that_cannot_be_read_fail_closed(caller, ssm, extension, log_lines):
    store(ssm, OLD)
    assert caller.webhook("/voice", CALL)["statusCode"] == 200  # the token is cached
    extension.stop()
    response = caller.webhook("/voice", CALL, shared_key=OLD)
    assert response["statusCode"] == 500
    assert any("parameter store unreachable" in line["message"] for line in log_lines())
    assert caller.webhook("/voice", CALL)["statusCode"] == 200


def test_a_shared_key_cold_start_loads_no_sdk(ssm, extension):
    store(ssm, OLD)
    script = textwrap.dedent(
        f"""
        import sys
        from devkit.events import LambdaContext, SharedKey, twilio_event
        import app
        event = twilio_event(
            "https://abc123defg.execute-api.us-east-1.amazonaws.com/api/voice",
            {CALL!r}, auth_token="unused", routes=list(app.app.routes),
            shared_key=SharedKey({OLD.key_id!r}, {OLD.secret!r}),
        )
        response = app.app(event, LambdaContext())
        heavy = [m for m in ("boto3", "botocore", "twilio.rest", "requests") if m in sys.modules]
        print(response["statusCode"], heavy)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "200 []", result.stdout + result.stderr


# --- the phone simulator ---------------------------------------------------------------------


def test_the_phone_signs_a_whole_call_with_a_shared_key(app, ssm):
    from urllib.parse import quote

    from devkit.phone import InProcess, Phone

    store(ssm, OLD)
    closed = f"{EXECUTE_API}/twimlets/message?Message=We%20are%20closed"
    menu = f"{EXECUTE_API}/twimlets/menu?Message=Press%201&Options%5B1%5D={quote(closed, safe='')}"
    call = Phone(InProcess(app, "not-the-token", shared_key=OLD), digits=["1"]).call(menu)
    assert ("Say", "We are closed") in call.verbs()
    assert [request.status for request in call.requests] == [200, 302, 200]
    refused = Phone(InProcess(app, "not-the-token", shared_key=NEW), digits=["1"]).call(menu)
    assert [request.status for request in refused.requests] == [403]


def test_the_phone_over_http_sends_the_settings_header(ssm, monkeypatch):
    import argparse
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qsl

    from devkit import phone_cli, stack
    from devkit.phone import OverHttp

    # This test's moto server, not a local stack another test (or a person) runs meanwhile.
    monkeypatch.setattr(stack, "read_state", dict)
    store(ssm, OLD, NEW)
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.append((dict(self.headers), parse_qsl(body, keep_blank_values=True)))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.end_headers()
            self.wfile.write(b"<Response/>")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    try:
        args = argparse.Namespace(signing_key=NEW.key_id, stage=None)
        key = phone_cli._shared_key(args)
        assert key == NEW  # its secret read from the local stack's parameter
        assert OverHttp("unused", shared_key=key).request("POST", url, SMS).status == 200
    finally:
        server.shutdown()
        server.server_close()
    ((headers, params),) = seen
    assert headers["X-Twilio-Webhooks-Signature-Settings"] == NEW.settings_header()
    assert headers["X-Twilio-Signature"] == NEW.sign(url, dict(params))
    with pytest.raises(SystemExit, match="lists no key"):
        phone_cli._shared_key(argparse.Namespace(signing_key="webhooks_sharedkey_x", stage=None))
