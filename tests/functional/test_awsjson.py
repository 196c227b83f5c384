"""chalicelib.awsjson: SigV4 as AWS checks it, and HTTP/retries as botocore would behave.

The signature is checked three ways: byte for byte against botocore's SigV4Auth, against AWS's
published "post-vanilla" vector, and end to end by a moto server with authentication switched
on (moto recomputes every request's signature from an IAM key it issued and refuses mismatches).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from chalicelib import awsjson, queue, storage
from devkit import resources

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-for-tests")


def _botocore_signature(
    url: str, headers: dict[str, str], body: bytes, creds: awsjson.Credentials, service: str
) -> str:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    request.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(
        BotoCredentials(creds.access_key, creds.secret_key, creds.token), service, REGION
    )
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE//token+with/slashes="])
@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://dynamodb.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_the_signature_is_botocores(url: str, host: str, token: str | None) -> None:
    creds = awsjson.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = json.dumps({"TableName": "t", "Item": {"pk": {"S": "msg#é  two  spaces"}}}).encode()
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": host,
        "x-amz-date": "20261127T070000Z",
        "x-amz-target": "DynamoDB_20120810.PutItem",
    }
    if token:
        headers["x-amz-security-token"] = token
    authorization = awsjson.sign(
        headers,
        body,
        creds=creds,
        region_name=REGION,
        service="dynamodb",
        amz_date=headers["x-amz-date"],
    )
    expected = _botocore_signature(url, headers, body, creds, "dynamodb")
    assert authorization.endswith(f"Signature={expected}")
    assert f"Credential=AKIDEXAMPLE/20261127/{REGION}/dynamodb/aws4_request" in authorization
    assert f"SignedHeaders={';'.join(sorted(headers))}," in authorization


def test_the_signature_matches_awss_post_vanilla_vector() -> None:
    # From AWS's Signature Version 4 test suite (post-vanilla).
    creds = awsjson.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    authorization = awsjson.sign(
        headers,
        b"",
        creds=creds,
        region_name="us-east-1",
        service="service",
        amz_date="20150830T123600Z",
    )
    assert authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    )


def test_the_host_header_drops_only_a_default_port() -> None:
    def host(url: str) -> str:
        return awsjson._Connection(url, 1, 1).host_header

    assert host("https://sqs.eu-west-1.amazonaws.com") == "sqs.eu-west-1.amazonaws.com"
    assert host("https://sqs.eu-west-1.amazonaws.com:443") == "sqs.eu-west-1.amazonaws.com"
    assert host("http://localhost:80/") == "localhost"
    assert host("http://localhost:4566") == "localhost:4566"
    assert host("http://[::1]:4566") == "[::1]:4566"


def test_endpoints_follow_the_environment(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert awsjson.endpoint("dynamodb", "eu-west-1") == "https://dynamodb.eu-west-1.amazonaws.com"
    assert awsjson.endpoint("sqs", "cn-north-1") == "https://sqs.cn-north-1.amazonaws.com.cn"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")
    assert awsjson.endpoint("ssm", REGION) == "http://127.0.0.1:5000"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:6000")
    assert awsjson.endpoint("ssm", REGION) == "http://127.0.0.1:6000"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(awsjson.AwsError) as refused:
        awsjson.region()
    assert refused.value.code == "NoRegion"


def test_credentials_fall_back_to_botocores_chain(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAPROFILEFAKE\naws_secret_access_key = fake-profile\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setattr(awsjson, "_chain", [])
    creds = awsjson.credentials()
    assert (creds.access_key, creds.secret_key, creds.token) == (
        "AKIAPROFILEFAKE",
        "fake-profile",
        None,
    )


# --- against a moto server that checks every signature ------------------------------------


@pytest.fixture(scope="module")
def checking_moto() -> Iterator[str]:
    """A moto server of its own (authentication is process-wide) that will check signatures."""
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.moto_server"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        url = line.split(" on ", 1)[1].split(";", 1)[0]
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_moto_accepts_our_signatures_and_refuses_bad_ones(
    checking_moto: str, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", checking_moto)
    iam = boto3.client("iam")
    iam.create_user(UserName="switchboard")
    key = iam.create_access_key(UserName="switchboard")["AccessKey"]
    allow_all = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    iam.put_user_policy(UserName="switchboard", PolicyName="all", PolicyDocument=allow_all)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    role = iam.create_role(RoleName="lambda", AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName="lambda", PolicyName="all", PolicyDocument=allow_all)
    resources.create("dev", dynamodb=boto3.client("dynamodb"), sqs=boto3.client("sqs"))
    names = resources.names("dev")
    # From here on, every request must carry a valid signature from a key moto issued.
    requests.post(f"{checking_moto}/moto-api/reset-auth", data="0", timeout=5)

    def use(access_key: str, secret_key: str, token: str | None = None) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
        if token:
            monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        else:
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        storage.reset()
        queue.reset()

    # Long-term keys (an IAM user), as on a laptop.
    use(key["AccessKeyId"], key["SecretAccessKey"])
    table = storage.Table(names["MessagesTable"])
    table.put({"pk": "msg#signed", "body": "hé llo", "n": 3, "tags": ["a", "b"]})
    assert table.get("msg#signed") == {
        "pk": "msg#signed",
        "body": "hé llo",
        "n": 3,
        "tags": ["a", "b"],
    }
    queue.send(names["SendQueue"], {"kind": "send", "id": "signed"}, delay=1)

    # Temporary keys with a session token, as Lambda gives them.
    sts = boto3.client(
        "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    temporary = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="fn")["Credentials"]
    use(temporary["AccessKeyId"], temporary["SecretAccessKey"], temporary["SessionToken"])
    table = storage.Table(names["MessagesTable"])
    table.update("msg#signed", "SET #n = #n + :one", names={"#n": "n"}, values={":one": 1})
    assert table.get("msg#signed")["n"] == 4
    queue.send(names["SendQueue"], {"kind": "send", "id": "temporary"})

    # A wrong secret is refused by the server, and surfaces as the storage/queue error.
    use(key["AccessKeyId"], "not-the-secret")
    with pytest.raises(storage.StorageError, match=r"SignatureDoesNotMatch|InvalidSignature"):
        storage.Table(names["MessagesTable"]).get("msg#signed")
    with pytest.raises(awsjson.AwsError) as refused:
        awsjson.Service("ssm", "AmazonSSM", json_version="1.1").call(
            "GetParametersByPath", {"Path": "/x"}
        )
    assert refused.value.status in (400, 403)
    assert not refused.value.retryable


# --- HTTP behaviour against a scripted server ---------------------------------------------


class _Script:
    """What the scripted server answers, in order; it records what it was sent."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[dict[str, Any]] = []
        self.connections: set[int] = set()


@pytest.fixture
def scripted(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Script]:
    script = _Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave together, as AWS sends them

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.connections.add(self.client_address[1])
            script.seen.append(
                {
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(body),
                }
            )
            status, headers, answer = script.answers.pop(0) if script.answers else (200, {}, b"{}")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Transfer-Encoding" in headers:
                self.end_headers()
                for start in range(0, len(answer), 5):
                    piece = answer[start : start + 5]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(awsjson, "_BASE_DELAY", 0.001)
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()


def _error(status: int, code: str, **more: Any) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {},
        json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", **more}).encode(),
    )


def test_a_call_sends_the_target_and_keeps_its_connection(scripted: _Script) -> None:
    service = awsjson.Service("dynamodb", "DynamoDB_20120810")
    scripted.answers = [(200, {}, b'{"Item":{"pk":{"S":"a"}}}'), (200, {}, b"{}")]
    assert service.call("GetItem", {"TableName": "t"}) == {"Item": {"pk": {"S": "a"}}}
    assert service.call("PutItem", {"TableName": "t"}) == {}
    first = scripted.seen[0]["headers"]
    assert first["x-amz-target"] == "DynamoDB_20120810.GetItem"
    assert first["content-type"] == "application/x-amz-json-1.0"
    assert first["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKEFAKE/")
    assert "x-amz-security-token" not in first
    assert len(scripted.connections) == 1  # one kept-alive connection for both calls


def test_throttling_and_server_errors_are_retried_and_conditions_are_not(scripted: _Script) -> None:
    service = awsjson.Service("dynamodb", "DynamoDB_20120810")
    scripted.answers = [
        _error(400, "ProvisionedThroughputExceededException"),
        (503, {}, b"<html>busy</html>"),
        (200, {}, b'{"ok":1}'),
    ]
    assert service.call("PutItem", {}) == {"ok": 1}
    assert len(scripted.seen) == 3

    scripted.seen.clear()
    scripted.answers = [_error(400, "ConditionalCheckFailedException", Item={"pk": {"S": "x"}})]
    with pytest.raises(awsjson.AwsError) as failed:
        service.call("PutItem", {})
    assert (failed.value.status, failed.value.code) == (400, "ConditionalCheckFailedException")
    assert failed.value.body["Item"] == {"pk": {"S": "x"}}
    assert len(scripted.seen) == 1

    scripted.seen.clear()
    scripted.answers = [(500, {}, b"{}")] * 3
    with pytest.raises(awsjson.AwsError) as failed:
        service.call("PutItem", {})
    assert failed.value.code == "HTTP 500" and len(scripted.seen) == 3


def test_a_conditional_failure_reaches_storage_with_the_current_item(scripted: _Script) -> None:
    scripted.answers = [_error(400, "ConditionalCheckFailedException", Item={"n": {"N": "2.5"}})]
    with pytest.raises(storage.ConditionFailedError) as failed:
        storage.Table("t", awsjson.Service("dynamodb", "DynamoDB_20120810")).put(
            {"pk": "a"}, condition="attribute_not_exists(pk)"
        )
    assert failed.value.current == {"n": 2.5}


def test_sqs_codes_come_from_the_query_error_header(scripted: _Script) -> None:
    scripted.answers = [
        (
            400,
            {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
            b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no"}',
        )
    ]
    with pytest.raises(awsjson.AwsError) as failed:
        awsjson.Service("sqs", "AmazonSQS").call("GetQueueUrl", {"QueueName": "x"})
    assert failed.value.code == "AWS.SimpleQueueService.NonExistentQueue"


def test_a_corrupted_answer_is_retried(scripted: _Script) -> None:
    body = b'{"ok":true}'
    scripted.answers = [
        (200, {"x-amz-crc32": "12345"}, body),
        (200, {"x-amz-crc32": str(zlib.crc32(body))}, body),
    ]
    assert awsjson.Service("dynamodb", "DynamoDB_20120810").call("GetItem", {}) == {"ok": True}
    assert len(scripted.seen) == 2


def test_chunked_answers_are_read(scripted: _Script) -> None:
    scripted.answers = [(200, {"Transfer-Encoding": "chunked"}, b'{"Items":[{"a":{"S":"long"}}]}')]
    answer = awsjson.Service("dynamodb", "DynamoDB_20120810").call("Query", {})
    assert answer == {"Items": [{"a": {"S": "long"}}]}


def test_a_connection_the_server_closed_is_replaced_without_an_attempt(scripted: _Script) -> None:
    service = awsjson.Service("dynamodb", "DynamoDB_20120810", attempts=1)
    service.call("GetItem", {})
    conn = service._local.conn
    conn._sock.shutdown(2)  # as if the server had dropped the idle connection
    assert service.call("GetItem", {}) == {}
    assert len(scripted.seen) == 2


def test_unreachable_and_hanging_endpoints_fail_within_the_timeouts(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, hanging_endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(awsjson.AwsError) as failed:
        awsjson.Service("sqs", "AmazonSQS").call("GetQueueUrl", {"QueueName": "x"})
    assert failed.value.status == 0 and failed.value.code.startswith("Unreachable")
    assert failed.value.retryable

    monkeypatch.setenv("AWS_ENDPOINT_URL", hanging_endpoint)
    started = time.monotonic()
    with pytest.raises(awsjson.AwsError) as failed:
        awsjson.Service("sqs", "AmazonSQS", read_timeout=0.3, attempts=2).call("GetQueueUrl", {})
    assert failed.value.code == "Unreachable (TimeoutError)"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "",
        0,
        -7,
        10**20,
        1.5,
        -0.25,
        True,
        False,
        None,
        b"\x00\xff",
        ["a", 1, None],
        {"nested": {"list": [1.5, "x"], "flag": True}},
    ],
)
def test_attribute_values_round_trip(value: Any) -> None:
    assert storage.value_of(storage.attribute(value)) == value


def test_attribute_values_are_dynamodbs_own_shapes() -> None:
    from boto3.dynamodb.types import TypeSerializer

    boto = TypeSerializer()
    for value in ["x", 5, True, None, ["a"], {"k": "v"}]:
        assert storage.attribute(value) == boto.serialize(value)
    assert storage.attribute(0.1) == {"N": "0.1"}
    assert storage.value_of({"N": "2.0"}) == 2 and storage.value_of({"N": "1E+2"}) == 100
    assert storage.value_of({"SS": ["a", "b"]}) == {"a", "b"}
    with pytest.raises(TypeError):
        storage.attribute(float("nan"))
    with pytest.raises(TypeError):
        storage.attribute(object())


def test_one_service_per_settings_until_reset() -> None:
    first = awsjson.service("sqs", "AmazonSQS", read_timeout=2.0)
    assert awsjson.service("sqs", "AmazonSQS", read_timeout=2.0) is first
    assert awsjson.service("sqs", "AmazonSQS", read_timeout=3.0) is not first
    awsjson.reset()
    assert awsjson.service("sqs", "AmazonSQS", read_timeout=2.0) is not first


def test_missing_configuration_fails_at_once(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setattr(awsjson.time, "sleep", lambda seconds: pytest.fail("retried"))
    with pytest.raises(awsjson.AwsError) as failed:
        awsjson.Service("sqs", "AmazonSQS").call("GetQueueUrl", {"QueueName": "x"})
    assert failed.value.code == "NoRegion" and not failed.value.retryable
