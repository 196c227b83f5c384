"""A deployed stage, end to end: run with SWITCHBOARD_DEPLOYED_STAGE=<stage> and AWS credentials
that can read its stack, its parameters and its logs (`make test` skips these and says so).

- the endpoint comes from the stack's EndpointURL output (stack `switchboard-<stage>`, or
  SWITCHBOARD_DEPLOYED_STACK);
- a webhook signed with the stage's auth token is answered, an unsigned one refused;
- with SWITCHBOARD_DEPLOYED_MAGIC=1 (a stage running on Twilio's test credentials), a message
  to the magic number +15005550006 is accepted;
- the function's logs carry the request's API Gateway id (x-amzn-RequestId);
- the softphone page is served, and API Gateway refuses a token request without a valid ID token.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

STAGE = os.environ.get("SWITCHBOARD_DEPLOYED_STAGE", "")
pytestmark = pytest.mark.skipif(
    not STAGE, reason="no deployed stage: set SWITCHBOARD_DEPLOYED_STAGE to test one"
)
MAGIC = "+15005550006"  # Twilio's test credentials accept it as sender and recipient


@pytest.fixture(scope="module")
def stack() -> dict[str, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    name = os.environ.get("SWITCHBOARD_DEPLOYED_STACK") or f"switchboard-{STAGE}"
    try:
        (found,) = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        pytest.fail(
            f"deployed stage {STAGE!r}: cannot read the stack {name} ({type(exc).__name__}); "
            "deploy it (make deploy STAGE=…) or name it with SWITCHBOARD_DEPLOYED_STACK",
            pytrace=False,
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    if "EndpointURL" not in outputs:
        pytest.fail(f"the stack {name} has no EndpointURL output", pytrace=False)
    return outputs


@pytest.fixture(scope="module")
def endpoint(stack: dict[str, str]) -> str:
    return stack["EndpointURL"].rstrip("/")


@pytest.fixture(scope="module")
def auth_token() -> str:
    import boto3

    name = f"/switchboard/{STAGE}/twilio/auth_token"
    try:
        answer = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    except Exception as exc:
        pytest.fail(f"cannot read {name} ({type(exc).__name__})", pytrace=False)
    return answer["Parameter"]["Value"]


def _post(url: str, data: Any, headers: dict[str, str]) -> Any:
    import requests

    return requests.post(url, data=data, headers=headers, timeout=30)


CALL = {
    "CallSid": "CA" + "0" * 32,
    "AccountSid": "AC" + "0" * 32,
    "From": "+15005550006",
    "To": "+15005550006",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def test_a_signed_webhook_is_answered_with_twiml(endpoint, auth_token):
    from twilio.request_validator import RequestValidator

    url = f"{endpoint}/voice"
    signature = RequestValidator(auth_token).compute_signature(url, CALL)
    response = _post(url, CALL, {"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text[:200]
    assert "<Response>" in response.text


def test_an_unsigned_webhook_is_refused(endpoint):
    response = _post(f"{endpoint}/voice", CALL, {})
    assert response.status_code == 403


def test_a_message_to_a_magic_number(endpoint):
    if os.environ.get("SWITCHBOARD_DEPLOYED_MAGIC") != "1":
        pytest.skip("the stage runs on live credentials: set SWITCHBOARD_DEPLOYED_MAGIC=1")
    import boto3
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    body = json.dumps({"to": MAGIC, "from": MAGIC, "body": "deployed test"})
    request = AWSRequest(
        "POST", f"{endpoint}/messages", data=body, headers={"Content-Type": "application/json"}
    )
    session = boto3.Session()
    SigV4Auth(session.get_credentials(), "execute-api", session.region_name).add_auth(request)
    response = requests.post(
        request.url, data=body, headers=dict(request.headers.items()), timeout=30
    )
    assert response.status_code in (201, 202), response.text[:300]


def test_the_logs_carry_the_request_id(endpoint):
    import boto3

    response = _post(f"{endpoint}/voice", CALL, {})
    request_id = response.headers.get("x-amzn-RequestId")
    assert request_id
    logs = boto3.client("logs")
    group = f"/aws/lambda/switchboard-{STAGE}-api"
    deadline = time.monotonic() + 90  # CloudWatch shows a line within a minute or so
    while time.monotonic() < deadline:
        found = logs.filter_log_events(
            logGroupName=group,
            startTime=int((time.time() - 600) * 1000),
            filterPattern=f'"{request_id}"',
        )["events"]
        if found:
            line = json.loads(found[0]["message"])
            assert line["api_request_id"] == request_id
            return
        time.sleep(5)
    pytest.fail(f"no line in {group} names the request {request_id} after 90 s")


def test_the_softphone_page_and_its_token_route(endpoint, stack):
    """The page is public under its CSP; API Gateway's Cognito authorizer refuses a token
    request without an ID token (401) or with a forged one, before the function runs."""
    import requests

    page = requests.get(f"{endpoint}/phone", timeout=30)
    assert page.status_code == 200, page.text[:200]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert f'data-client-id="{stack["SoftphoneUserPoolClientId"]}"' in page.text
    assert requests.post(f"{endpoint}/client/token", timeout=30).status_code == 401
    forged = "eyJhbGciOiJub25lIn0.eyJjb2duaXRvOnVzZXJuYW1lIjoibWFsbG9yeSJ9."  # alg none
    refused = requests.post(
        f"{endpoint}/client/token", headers={"Authorization": forged}, timeout=30
    )
    assert refused.status_code == 401
