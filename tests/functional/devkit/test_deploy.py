"""`make deploy` and `make destroy` (devkit/deploy.py) against the moto server: the artifact
bucket, the upload, the change set, SAM's transform, the stack and its outputs, the stage lock,
and each one-line error.

The moto server runs SAM's transform with AWS's own translator when a change set is created, as
CloudFormation does (devkit/moto_cloudformation.py), so the stack is made here from what AWS would
make of the template: functions, event sources, the REST API with its routes, the user pool.
What it cannot show: moto skips the alarms and metric filters, does not run the functions, and
imports the API's routes without API Gateway's own checks (cfn-lint on the translated
template, in test_package, checks every resource's properties).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest
import requests

from devkit import deploy
from tests.functional.devkit.test_package import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def aws(moto_url, monkeypatch):
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # what deploy reads (botocore does not)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # for this test's own clients
    return moto_url


def test_deploy_makes_the_stack_and_prints_what_to_give_twilio(aws, capsys):
    outputs = deploy.deploy("dev")
    printed = capsys.readouterr().out
    assert "created the artifact bucket switchboard-artifacts-123456789012-eu-west-1" in printed
    s3 = boto3.client("s3")
    bucket = "switchboard-artifacts-123456789012-eu-west-1"
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len([k for k in keys if k.endswith(".zip")]) == 1
    key = next(k for k in keys if k.endswith(".json"))
    template = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # The stage lock, and the code where the template says.
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["dev"]
    assert template["Resources"]["APIHandler"]["Properties"]["CodeUri"]["Bucket"] == bucket

    cloudformation = boto3.client("cloudformation")
    (stack,) = cloudformation.describe_stacks(StackName="switchboard-dev")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    given = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert given["Stage"] == "dev"
    made = {
        r["LogicalResourceId"]: r
        for r in cloudformation.list_stack_resources(StackName="switchboard-dev")[
            "StackResourceSummaries"
        ]
    }
    assert {r["ResourceStatus"] for r in made.values()} == {"CREATE_COMPLETE"}
    # The functions, from the uploaded code, with their event sources.
    lambda_ = boto3.client("lambda")
    for name in ("APIHandler", "SendWorker", "DispatchDue", "ReconcileSending"):
        function = lambda_.get_function(FunctionName=made[name]["PhysicalResourceId"])
        assert function["Code"]["Location"] or function["Configuration"]["CodeSize"]
        variables = function["Configuration"]["Environment"]["Variables"]
        assert variables["SWITCHBOARD_SSM_PATH"] == "/switchboard/dev"
        assert variables["SWITCHBOARD_TABLE"] == "switchboard-dev"  # the Ref, resolved
    (mapping,) = lambda_.list_event_source_mappings(
        FunctionName=made["SendWorker"]["PhysicalResourceId"]
    )["EventSourceMappings"]
    assert mapping["EventSourceArn"].endswith(":switchboard-dev-send")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert boto3.client("dynamodb").describe_table(TableName="switchboard-dev")
    # The REST API carries every route, each invoking the API handler.
    api = outputs["RestAPIId"]
    paths = {r["path"]: r for r in boto3.client("apigateway").get_resources(restApiId=api)["items"]}
    for route in ("/voice", "/sms", "/messages", "/twimlets/{name}", "/client/token", "/phone"):
        assert route in paths, route
    # The user pool the softphone page signs in against.
    pool = boto3.client("cognito-idp").describe_user_pool(UserPoolId=outputs["SoftphoneUserPoolId"])
    assert pool["UserPool"]["Name"] == "switchboard-dev-softphone"

    endpoint = f"https://{api}.execute-api.eu-west-1.amazonaws.com/api/"
    assert outputs["EndpointURL"] == endpoint
    assert f"deployed switchboard-dev: {endpoint}" in printed
    assert f"{endpoint}voice" in printed and f"{endpoint}sms" in printed
    assert f"{endpoint}phone" in printed and f"{endpoint}client/voice" in printed

    # The same code and template again (the package is reproducible): nothing changes.
    deploy.deploy("dev")
    assert "no changes: the stack is up to date" in capsys.readouterr().out
    assert len([k for k in _keys(s3, bucket) if k.endswith(".zip")]) == 1
    # A parameter changed: an update, applied.
    deploy.deploy("dev", overrides={"LogLevel": "DEBUG"})
    (stack,) = cloudformation.describe_stacks(StackName="switchboard-dev")["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    api_handler = lambda_.get_function(FunctionName=made["APIHandler"]["PhysicalResourceId"])
    assert (
        api_handler["Configuration"]["Environment"]["Variables"]["SWITCHBOARD_LOG_LEVEL"] == "DEBUG"
    )

    # Teardown: the stack and its functions go; the table (Retain) and the pool (Retain) stay.
    deploy.destroy("dev")
    assert "aws dynamodb delete-table --table-name switchboard-dev" in capsys.readouterr().out
    assert not lambda_.list_functions()["Functions"]
    assert boto3.client("dynamodb").describe_table(TableName="switchboard-dev")


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_a_template_sams_transform_refuses_is_one_line_and_makes_nothing(aws, monkeypatch):
    """The code left at the package's local path (what an upload that forgot to point the
    template at S3 would send): CloudFormation's transform refuses it, the change set FAILED."""
    monkeypatch.setattr(deploy, "point_at_code", lambda template, bucket, key: template)
    with pytest.raises(deploy.DeployError) as failed:
        deploy.deploy("dev")
    message = str(failed.value)
    assert message.startswith(
        "the change set failed: Transform AWS::Serverless-2016-10-31 failed with: "
    )
    assert "CodeUri" in message and "\n" not in message
    assert not boto3.client("lambda").list_functions()["Functions"]


def test_destroy_deletes_the_stack_and_says_what_it_keeps(aws, capsys):
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="switchboard-dev",
        TemplateBody=json.dumps(
            {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
        ),
    )
    deploy.destroy("dev")
    printed = capsys.readouterr().out
    assert "aws dynamodb delete-table --table-name switchboard-dev" in printed
    assert "/switchboard/dev" in printed
    with pytest.raises(deploy.DeployError, match="no stack switchboard-dev"):
        deploy.destroy("dev")


def test_the_urls_to_give_twilio():
    urls = deploy.webhook_urls("https://abc.execute-api.eu-west-1.amazonaws.com/api/")
    assert urls["voice URL"] == "https://abc.execute-api.eu-west-1.amazonaws.com/api/voice"
    assert urls["messaging URL"].endswith("/api/sms")


def _cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devkit.deploy", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_each_missing_piece_is_one_line(aws, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base["AWS_CONFIG_FILE"] = base["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    cases = [
        ({}, ["deploy", "--stage", "dev"], "error: no AWS region"),
        ({"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": aws}, ["deploy", "--stage", "dev"],
         "error: no AWS credentials"),
        ({"AWS_REGION": "eu-west-1"}, ["deploy", "--stage", "qa"], "error: no stage 'qa'"),
    ]  # fmt: skip
    for extra, argv, expected in cases:
        result = _cli(*argv, env={**base, **extra})
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(expected), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_policy_file_chalice_cannot_read_is_named(tmp_path, monkeypatch):
    from devkit import package

    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["iam_policy_file"] = "missing.json"
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    (project / "app.py").write_text((ROOT / "app.py").read_text())
    (project / "chalicelib").symlink_to(ROOT / "chalicelib")
    (project / "requirements.txt").write_text("")
    (project / "infra").symlink_to(ROOT / "infra")
    with pytest.raises(package.PackagingError, match="Unable to load IAM policy file"):
        package.build("dev", tmp_path / "out", project)


def test_put_params_checks_aws_before_asking_for_the_token(aws, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base["AWS_CONFIG_FILE"] = base["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    argv = [sys.executable, "-m", "devkit", "put-params", "--stage", "prod", "--auth-token"]
    for extra, expected in (
        ({}, "error: AWS is not configured here"),
        ({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": aws}, "error: no AWS credentials"),
    ):
        result = subprocess.run(
            argv, cwd=ROOT, env={**base, **extra}, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr.startswith(expected), result.stderr
        assert "token" not in result.stdout.lower() and "Traceback" not in result.stderr
