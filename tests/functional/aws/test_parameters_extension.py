"""The Lambda extension path: parameters read by name over localhost, never importing boto3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest

from chalicelib.aws import parameters
from chalicelib.runtime import warmup
from devkit import demo
from devkit.ssm_extension import ExtensionServer
from tests.functional.webhooks.test_gate import CALL, HELLO

TOKEN = "local-demo-session-token"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def extension(ssm, app, monkeypatch):
    with ExtensionServer(boto3.client("ssm"), token=TOKEN) as server:
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
        parameters.reset()
        yield server


def test_voice_reads_only_the_names_it_needs(caller, extension):
    assert caller.webhook("/voice", CALL)["body"] == HELLO
    # twilio/auth_token, voice/ring_clients (none: no browser rings) and voice/greeting
    assert extension.requests == 3
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    assert extension.requests == 3  # cached for the TTL


def test_bad_signature_is_refused(caller, extension):
    assert caller.webhook("/voice", CALL, token="wrong")["statusCode"] == 403


def test_missing_token_parameter_fails_closed(caller, ssm, extension, log_lines):
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/twilio/auth_token")
    assert caller.webhook("/voice", CALL)["statusCode"] == 500
    assert any(line.get("parameter") == "twilio/auth_token" for line in log_lines())


def test_extension_down_fails_closed_and_fallback_uses_cache(caller, extension, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(parameters._named, "_clock", lambda: clock[0])
    assert caller.webhook("/fallback", CALL)["statusCode"] == 200
    extension.stop()
    clock[0] = 300 + 3600 + 1
    assert caller.webhook("/voice", CALL)["statusCode"] == 500
    assert caller.webhook("/fallback", CALL)["statusCode"] == 200


def test_wrong_session_token_is_an_error_not_a_missing_parameter(caller, extension, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "not-the-token")
    assert caller.webhook("/voice", CALL)["statusCode"] == 500


def test_a_rotated_token_passes_on_its_first_request(caller, ssm, extension):
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/twilio/auth_token",
        Value="rotated-demo-token",
        Type="SecureString",
        Overwrite=True,
    )
    # The extension (like the real one) still serves the old token from its cache for minutes.
    assert (
        "rotated"
        not in extension.answer(
            f"/systemsmanager/parameters/get?name={demo.SSM_PATH}/twilio/auth_token"
            "&withDecryption=true",
            TOKEN,
        )[1]
    )
    assert caller.webhook("/voice", CALL, token="rotated-demo-token")["statusCode"] == 200
    assert caller.webhook("/sms", SMS, token="rotated-demo-token")["statusCode"] == 200


@pytest.mark.parametrize("status", [400, 404, 410])
def test_an_optional_parameter_the_extension_cannot_read_is_not_set(
    caller, ssm, extension, log_lines, status
):
    # The real extension's answer for a name that is not set is undocumented: the stand-in
    # answers a bare 4xx with a generic body, and the defaults must still apply.
    extension.unset_status = status
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/voice/greeting")
    response = caller.webhook("/voice", CALL)
    assert response["statusCode"] == 200
    assert "<Say>" in response["body"]
    assert caller.webhook("/sms", SMS)["statusCode"] == 200  # sms/auto_reply is not set either
    told = [
        line for line in log_lines() if line.get("parameter") == f"{demo.SSM_PATH}/voice/greeting"
    ]
    # Said once, at INFO: an unset optional parameter is normal, not a warning.
    assert [line["level"] for line in told] == ["INFO"]
    caller.webhook("/voice", CALL)
    assert not [line for line in log_lines() if line.get("parameter")]
    ssm.delete_parameter(Name=f"{demo.SSM_PATH}/twilio/auth_token")
    parameters.reset()
    extension.forget()  # a new container: nothing cached here or in its extension
    assert caller.webhook("/voice", CALL)["statusCode"] == 500  # the token still fails closed


def test_an_extension_that_throttles_is_a_failure_not_an_unset_parameter(
    caller, extension, monkeypatch
):
    monkeypatch.setattr(extension, "answer", lambda path, token: (429, "slow down"))
    assert caller.webhook("/voice", CALL)["statusCode"] == 500


SMS = {
    "MessageSid": "SM" + "7" * 32,
    "From": "+14155550100",
    "To": demo.NUMBER,
    "Body": "Hello there",
    "NumMedia": "0",
}


API_HANDLER_MB = json.loads((ROOT / ".chalice" / "config.json").read_text())["lambda_functions"][
    "api_handler"
]["lambda_memory_size"]
EVERY_SDK = ["botocore", "requests", "twilio.rest"]


@pytest.mark.parametrize(
    ("path", "payload", "memory", "loaded"),
    [
        # The API handler at its configured size (a full vCPU): INIT loads no SDK, and a
        # webhook loads only what it writes with.
        ("/voice", CALL, API_HANDLER_MB, []),
        ("/fallback", CALL, API_HANDLER_MB, []),
        ("/twimlets/message?Message%5B0%5D=Hello", CALL, API_HANDLER_MB, []),
        # /sms writes (its replay marker and the message): botocore, and nothing heavier.
        ("/sms", SMS, API_HANDLER_MB, ["botocore"]),
        # Below a full vCPU the handler is slow and INIT is not: every SDK loads during INIT
        # (chalicelib/runtime/warmup.py), /voice included.
        ("/voice", CALL, 512, EVERY_SDK),
        ("/sms", SMS, 512, EVERY_SDK),
    ],
)
def test_a_webhook_cold_start_loads_only_the_sdk_it_writes_with(
    extension, moto_url, path, payload, memory, loaded
):
    assert API_HANDLER_MB >= warmup.FULL_VCPU_MB  # else the first rows are not what deploys
    # A fresh interpreter, as in a new Lambda container of the API handler.
    script = textwrap.dedent(
        f"""
        import sys
        from devkit.events import LambdaContext, twilio_event
        import app
        event = twilio_event(
            "https://abc123defg.execute-api.us-east-1.amazonaws.com/api{path}",
            {payload!r}, auth_token={demo.AUTH_TOKEN!r}, routes=list(app.app.routes),
        )
        heavy = [m for m in ("boto3", "botocore", "twilio.rest", "requests") if m in sys.modules]
        response = app.app(event, LambdaContext())
        heavy += [m for m in ("boto3", "botocore", "twilio.rest", "requests")
                  if m in sys.modules and m not in heavy]
        print(response["statusCode"], sorted(heavy))
        """
    )
    import os

    env = {**os.environ, "_HANDLER": "app.app", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == f"200 {loaded}", result.stdout + result.stderr
    if path == "/sms":
        stored = boto3.client("dynamodb").get_item(
            TableName=os.environ["SWITCHBOARD_TABLE"], Key={"pk": {"S": "in#" + SMS["MessageSid"]}}
        )
        assert stored["Item"]["body"] == {"S": "Hello there"}
