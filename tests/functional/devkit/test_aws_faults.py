"""The moto server's fault layer as botocore sees it: AWS's codes, statuses, dropped connections."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from werkzeug.test import Client

from chalicelib.aws import storage
from devkit import cli
from devkit.aws_faults import AwsFaults, FaultLayer

KEYS = {"aws_access_key_id": "AKIAFAKEFAKEFAKEFAKE", "aws_secret_access_key": "fake-secret"}
EMAIL = {
    "Source": "app@example.com",
    "Destination": {"ToAddresses": ["someone@example.com"]},
    "Message": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
}


@pytest.fixture
def aws(moto_url: str, aws_faults: AwsFaults) -> Callable[..., Any]:
    """boto3 clients on the moto server in standard retry mode: aws(service, attempts=1)."""

    def make(service: str, attempts: int = 1, read_timeout: float = 5.0) -> Any:
        config = Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=1,
        )
        return boto3.client(
            service, endpoint_url=moto_url, region_name="us-east-1", config=config, **KEYS
        )

    return make


@pytest.fixture
def table(aws: Callable[..., Any]) -> str:
    name = f"faults-{os.urandom(4).hex()}"
    aws("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.fixture
def queue_url(aws: Callable[..., Any]) -> str:
    return aws("sqs").create_queue(QueueName=f"faults-{os.urandom(4).hex()}")["QueueUrl"]


def _calls(aws: Callable[..., Any], table: str, queue_url: str, attempts: int) -> dict[str, Any]:
    """One call per service the app uses, each a write where there is one."""
    dynamodb, sqs, ssm, ses = (aws(s, attempts) for s in ("dynamodb", "sqs", "ssm", "ses"))
    aws("ses").verify_email_identity(EmailAddress=EMAIL["Source"])
    aws("ssm").put_parameter(Name="/faults/p", Value="v", Type="String", Overwrite=True)
    return {
        "dynamodb:PutItem": lambda: dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}}),
        "sqs:SendMessage": lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="m"),
        "ssm:GetParameter": lambda: ssm.get_parameter(Name="/faults/p"),
        "ses:SendEmail": lambda: ses.send_email(**EMAIL),
    }


def _state(aws: Callable[..., Any], table: str, queue_url: str, operation: str) -> Any:
    """What the write of _calls for operation changes in moto (None for a read)."""
    if operation == "dynamodb:PutItem":
        return "Item" in aws("dynamodb").get_item(TableName=table, Key={"pk": {"S": "a"}})
    if operation == "sqs:SendMessage":
        attributes = aws("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    if operation == "ses:SendEmail":
        return aws("ses").get_send_quota()["SentLast24Hours"]
    return None


ERRORS = [
    ("dynamodb:PutItem", "500", "InternalServerError", 500),
    ("dynamodb:PutItem", "throttle", "ProvisionedThroughputExceededException", 400),
    ("dynamodb:PutItem", "throttle-ThrottlingException", "ThrottlingException", 400),
    ("sqs:SendMessage", "500", "InternalFailure", 500),
    ("sqs:SendMessage", "throttle", "RequestThrottled", 403),
    ("sqs:SendMessage", "throttle-ThrottlingException", "ThrottlingException", 400),
    ("ssm:GetParameter", "500", "InternalServerError", 500),
    ("ssm:GetParameter", "throttle", "ThrottlingException", 400),
    ("ses:SendEmail", "500", "InternalFailure", 500),
    ("ses:SendEmail", "throttle", "Throttling", 400),
]


@pytest.mark.parametrize(("operation", "fault", "code", "status"), ERRORS)
def test_each_error_is_the_services_own_and_applies_nothing(
    aws: Any,
    aws_faults: AwsFaults,
    table: str,
    queue_url: str,
    *,
    operation: str,
    fault: str,
    code: str,
    status: int,
) -> None:
    calls = _calls(aws, table, queue_url, attempts=1)
    before = _state(aws, table, queue_url, operation)
    aws_faults.script(operation, [fault])
    with pytest.raises(ClientError) as caught:
        calls[operation]()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert _state(aws, table, queue_url, operation) == before
    assert [(e["operation"], e["fault"]) for e in aws_faults.injected] == [(operation, fault)]
    calls[operation]()  # the script is used up: the next one goes through
    if operation != "ssm:GetParameter":
        assert _state(aws, table, queue_url, operation) != before


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("dynamodb:PutItem", "ProvisionedThroughputExceededException"),
        ("sqs:SendMessage", "RequestThrottled"),
        ("ssm:GetParameter", "ThrottlingException"),
        ("ses:SendEmail", "Throttling"),
    ],
)
def test_standard_retries_ride_out_throttles_and_500s_then_exhaust(
    aws: Any, aws_faults: AwsFaults, table: str, queue_url: str, operation: str, code: str
) -> None:
    calls = _calls(aws, table, queue_url, attempts=2)
    aws_faults.script(operation, ["throttle", "ok", "500", "throttle"])
    assert calls[operation]()["ResponseMetadata"]["RetryAttempts"] == 1
    with pytest.raises(ClientError) as caught:
        calls[operation]()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert aws_faults.counts() == {f"{operation} throttle": 2, f"{operation} 500": 1}


def test_lost_applies_then_drops_the_connection(
    aws: Any, aws_faults: AwsFaults, table: str, queue_url: str
) -> None:
    calls = _calls(aws, table, queue_url, attempts=1)
    for operation in ("dynamodb:PutItem", "sqs:SendMessage", "ses:SendEmail"):
        before = _state(aws, table, queue_url, operation)
        aws_faults.script(operation, ["lost"])
        with pytest.raises(ConnectionClosedError):
            calls[operation]()
        assert _state(aws, table, queue_url, operation) != before


def test_a_lost_conditional_put_meets_its_own_write_on_the_retry(
    aws: Any, aws_faults: AwsFaults, table: str
) -> None:
    aws_faults.script("dynamodb:PutItem", ["lost"])
    with pytest.raises(ClientError) as caught:
        aws("dynamodb", attempts=2).put_item(
            TableName=table,
            Item={"pk": {"S": "once"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" in aws("dynamodb").get_item(TableName=table, Key={"pk": {"S": "once"}})


def test_the_apps_own_clients_see_a_lost_write_as_a_failed_condition(
    ssm: Any, aws_faults: AwsFaults
) -> None:
    storage.reset()
    table = storage.get_table(os.environ["SWITCHBOARD_TABLE"])
    aws_faults.script("dynamodb:PutItem", ["lost"], match="msg#lost")
    with pytest.raises(storage.ConditionFailedError) as caught:
        table.put({"pk": "msg#lost", "state": "queued"}, condition="attribute_not_exists(pk)")
    assert caught.value.current == {"pk": "msg#lost", "state": "queued"}
    storage.reset()


def test_hang_times_the_client_out_and_holds_no_other_request(
    aws: Any, aws_faults: AwsFaults, table: str
) -> None:
    # Longer than the test: reset() lets the held request go, so the test does not wait for it.
    aws_faults.configure(hang_seconds=30)
    aws_faults.script("dynamodb:PutItem", ["hang"])
    raised: list[BaseException] = []

    def put() -> None:
        try:
            aws("dynamodb", read_timeout=0.5).put_item(TableName=table, Item={"pk": {"S": "h"}})
        except BaseException as exc:  # the thread hands it to the test
            raised.append(exc)

    thread = threading.Thread(target=put)
    thread.start()
    thread.join(timeout=5)
    assert len(raised) == 1 and isinstance(raised[0], ReadTimeoutError)
    # The request is still held (its answer never came); others pass, moto's lock is free.
    assert aws_faults.counts() == {"dynamodb:PutItem hang": 1}
    fast = aws("dynamodb", read_timeout=0.5)
    assert "Item" not in fast.get_item(TableName=table, Key={"pk": {"S": "h"}})
    fast.put_item(TableName=table, Item={"pk": {"S": "other"}})
    aws_faults.reset()


def test_hang_seconds_bounds_the_hold_then_the_connection_closes(
    aws: Any, aws_faults: AwsFaults, table: str
) -> None:
    aws_faults.configure(hang_seconds=0.2)
    aws_faults.script("dynamodb:GetItem", ["hang"])
    with pytest.raises(ConnectionClosedError):
        aws("dynamodb", read_timeout=5).get_item(TableName=table, Key={"pk": {"S": "x"}})


def test_scripts_go_in_order_per_operation_and_match(
    aws: Any, aws_faults: AwsFaults, table: str
) -> None:
    dynamodb = aws("dynamodb")

    def put(pk: str) -> str:
        try:
            dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}})
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        return "ok"

    aws_faults.script("dynamodb:PutItem", ["500", "ok", "throttle"], match="marked")
    aws_faults.script("dynamodb:PutItem", ["throttle-ThrottlingException"], match="other")
    aws_faults.script("dynamodb:GetItem", ["500"])
    pending = aws_faults.settings()["scripts"]
    assert [s["match"] for s in pending] == ["marked", "other", None]
    assert put("plain") == "ok"
    assert put("marked-1") == "InternalServerError"
    assert put("other-1") == "ThrottlingException"
    assert put("marked-2") == "ok"
    assert put("other-2") == "ok"
    assert put("marked-3") == "ProvisionedThroughputExceededException"
    assert put("marked-4") == "ok"
    with pytest.raises(ClientError):
        dynamodb.get_item(TableName=table, Key={"pk": {"S": "plain"}})
    assert aws_faults.settings()["scripts"] == []


def test_a_seeded_rate_is_reproducible_and_stays_on_its_operations(
    aws: Any, aws_faults: AwsFaults, table: str
) -> None:
    dynamodb = aws("dynamodb")
    key = {"pk": {"S": "r"}}

    def run() -> list[str]:
        outcomes = []
        for _ in range(24):
            dynamodb.put_item(TableName=table, Item=key)  # not chosen: never fails
            try:
                dynamodb.get_item(TableName=table, Key=key)
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append(exc.response["Error"]["Code"])
        return outcomes

    settings = {"rate": 0.5, "faults": ["500", "throttle"], "operations": ["dynamodb:GetItem"]}
    aws_faults.configure(**settings, seed=7)
    first = run()
    aws_faults.configure(**settings, seed=7)
    assert run() == first
    assert {"ok", "InternalServerError", "ProvisionedThroughputExceededException"} == set(first)
    assert set(aws_faults.counts()) <= {"dynamodb:GetItem 500", "dynamodb:GetItem throttle"}


def test_unrelated_requests_pass_untouched(
    aws: Any, aws_faults: AwsFaults, table: str, queue_url: str
) -> None:
    aws_faults.configure(rate=1.0, faults=["500"], operations=["dynamodb:PutItem"])
    sqs = aws("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody="through")
    assert sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"] == "through"
    assert table in aws("dynamodb").list_tables()["TableNames"]
    with pytest.raises(ClientError):
        aws("dynamodb").put_item(TableName=table, Item={"pk": {"S": "x"}})
    assert aws_faults.counts() == {"dynamodb:PutItem 500": 1}


def test_requests_signed_with_a_spared_key_pass_untouched(
    aws: Any, aws_faults: AwsFaults, table: str, moto_url: str
) -> None:
    aws_faults.configure(rate=1.0, faults=["500"], spare=["HARNESS"])
    harness = boto3.client(
        "dynamodb",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="HARNESS",
        aws_secret_access_key="x",
    )
    harness.put_item(TableName=table, Item={"pk": {"S": "spared"}})
    with pytest.raises(ClientError):
        aws("dynamodb").put_item(TableName=table, Item={"pk": {"S": "not"}})
    assert aws_faults.counts() == {"dynamodb:PutItem 500": 1}


def test_sqs_query_protocol_gets_the_query_error(moto_url: str, aws_faults: AwsFaults) -> None:
    aws_faults.script("sqs:SendMessage", ["throttle"])
    request = AWSRequest(
        method="POST",
        url=moto_url + "/",
        data="Action=SendMessage&QueueUrl=x&MessageBody=m&Version=2012-11-05",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(*KEYS.values()), "sqs", "us-east-1").add_auth(request)
    answer = requests.post(request.url, data=request.body, headers=dict(request.headers), timeout=5)
    assert answer.status_code == 403
    assert "<Code>RequestThrottled</Code>" in answer.text and "<Type>Sender</Type>" in answer.text


def test_settings_are_checked(aws_faults: AwsFaults) -> None:
    for bad in (
        {"rate": 1.5},
        {"rate": -0.1},
        {"faults": ["slow"]},
        {"faults": []},
        {"operations": ["dynamodb:Nope"]},
        {"operations": ["s3:PutObject"]},
        {"hang_seconds": -1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            aws_faults.configure(**bad)
    with pytest.raises(ValueError, match="operation"):
        aws_faults.script("dynamodb:PutItems", ["500"])
    with pytest.raises(ValueError, match="faults"):
        aws_faults.script("dynamodb:PutItem", ["late"])


@pytest.fixture
def leftover_fault(moto_server: Any) -> None:
    """A fault set before the seeding fixture runs, as a test's own fixture might."""
    moto_server.faults.configure(rate=1.0, faults=["500"], operations=None)


def test_the_seeding_fixture_meets_no_fault(leftover_fault: None, ssm: Any) -> None:
    assert ssm.get_parameters_by_path(Path="/", Recursive=True)["Parameters"]


def test_the_control_endpoint(moto_url: str, aws_faults: AwsFaults) -> None:
    config = {"rate": 0.25, "faults": ["lost"], "operations": ["sqs:SendMessage"], "seed": 3}
    answer = requests.post(f"{moto_url}/_faults/config", json=config, timeout=5)
    assert answer.status_code == 200
    assert aws_faults.settings() | config == aws_faults.settings()
    script = {"operation": "dynamodb:UpdateItem", "faults": ["lost", "ok"], "match": '"sid"'}
    assert requests.post(f"{moto_url}/_faults/script", json=script, timeout=5).status_code == 200
    assert aws_faults.settings()["scripts"] == [script]
    aws_faults.next("dynamodb:UpdateItem", b'{"sid": 1}')
    shown = requests.get(f"{moto_url}/_faults", timeout=5).json()
    assert shown["counts"] == {"dynamodb:UpdateItem lost": 1}
    assert shown["rate"] == 0.25 and shown["scripts"][0]["faults"] == ["ok"]
    assert requests.post(f"{moto_url}/_faults/reset", timeout=5).json()["rate"] == 0
    assert aws_faults.injected == [] and not aws_faults.active()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("config", {"rate": 0.1, "speed": 2}, "speed"),
        ("config", {"rate": "lots"}, "rate"),
        ("config", {"faults": "500"}, "faults"),
        ("config", {"operations": ["dynamodb:Nope"]}, "operations"),
        ("config", {"seed": 1.5}, "seed"),
        ("script", {"operation": "dynamodb:PutItem"}, "faults"),
        ("script", {"operation": "nope", "faults": ["500"]}, "operation"),
        ("script", {"operation": "dynamodb:PutItem", "faults": ["500"], "when": 1}, "when"),
        ("script", {"operation": "dynamodb:PutItem", "faults": ["500"], "match": 1}, "match"),
    ],
)
def test_the_control_endpoint_names_a_bad_key(
    moto_url: str, aws_faults: AwsFaults, path: str, body: dict[str, Any], field: str
) -> None:
    answer = requests.post(f"{moto_url}/_faults/{path}", json=body, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert not aws_faults.active()


def test_the_control_endpoint_refuses_other_machines_and_unknown_paths() -> None:
    faults = AwsFaults()
    client = Client(FaultLayer(lambda environ, start: [], faults))
    remote = client.post(
        "/_faults/config", json={"rate": 1.0}, environ_base={"REMOTE_ADDR": "10.0.0.8"}
    )
    assert remote.status_code == 403 and not faults.active()
    local = {"REMOTE_ADDR": "127.0.0.1"}
    assert client.get("/_faults/other", environ_base=local).status_code == 404
    assert client.get("/_faults/config", environ_base=local).status_code == 405
    assert client.post("/_faults/config", data="[", environ_base=local).status_code == 400
    assert client.get("/_faults", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_the_cli_shows_configures_scripts_and_resets(
    moto_url: str, aws_faults: AwsFaults, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: str) -> int:
        return cli.main(["faults", "aws", "--moto-url", moto_url, *args])

    assert run("--rate", "0.2", "--faults", "500,throttle,lost", "--seed", "4") == 0
    assert aws_faults.settings()["faults"] == ["500", "throttle", "lost"]
    assert aws_faults.settings()["seed"] == 4
    assert run("--script", "dynamodb:UpdateItem", "lost,ok", "--match", '"sid"') == 0
    assert aws_faults.settings()["scripts"] == [
        {"operation": "dynamodb:UpdateItem", "faults": ["lost", "ok"], "match": '"sid"'}
    ]
    capsys.readouterr()
    assert run() == 0
    assert json.loads(capsys.readouterr().out)["rate"] == 0.2
    assert run("--operations", "dynamodb:PutItems") == 1
    assert "dynamodb:PutItems" in capsys.readouterr().err
    assert run("--reset") == 0
    assert not aws_faults.active()
