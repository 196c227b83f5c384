"""`make deploy` and `make destroy` (devkit/deploy.py) against the moto server: the artifact
bucket, the upload, the change set and the stack, the stage lock, and each one-line error.

moto's CloudFormation accepts the packaged SAM template and creates what it knows of it; it does
not run SAM's transform, so the functions and the API are not created here: this proves the
steps and their order, not that AWS accepts every resource (cfn-lint, in test_package, does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


def test_deploy_creates_the_bucket_uploads_and_asks_for_the_stack(aws, capsys):
    """Up to the change set: moto's CloudFormation cannot run SAM's transform, so executing it
    fails there, and that failure must be one clear line too."""
    with pytest.raises(deploy.DeployError, match="CloudFormation could not run the change set"):
        deploy.deploy("dev")
    printed = capsys.readouterr().out
    assert "created the artifact bucket switchboard-artifacts-123456789012-eu-west-1" in printed
    s3 = boto3.client("s3")
    bucket = "switchboard-artifacts-123456789012-eu-west-1"
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.endswith(".zip") for k in keys) and any(k.endswith(".json") for k in keys)
    key = next(k for k in keys if k.endswith(".json"))
    template = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # The stage lock, and the code where the template says.
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["dev"]
    assert template["Resources"]["APIHandler"]["Properties"]["CodeUri"]["Bucket"] == bucket
    cloudformation = boto3.client("cloudformation")
    (change,) = cloudformation.list_change_sets(StackName="switchboard-dev")["Summaries"]
    described = cloudformation.describe_change_set(
        StackName="switchboard-dev", ChangeSetName=change["ChangeSetName"]
    )
    assert described["Parameters"] == [{"ParameterKey": "Stage", "ParameterValue": "dev"}]


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
