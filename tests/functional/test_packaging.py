"""`chalice package` builds a deployable, least-privilege CloudFormation template offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WEBHOOKS = ("/voice", "/sms", "/fallback")
API = ("/messages", "/calls")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["dev", "prod"])
def package(request, tmp_path_factory) -> tuple[str, Path]:
    stage = request.param
    out = tmp_path_factory.mktemp(f"package-{stage}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    subprocess.run(
        [BIN / "chalice", "--project-dir", ROOT, "package", "--stage", stage, out],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    return stage, out


def test_cfn_lint_passes(package):
    _, out = package
    result = subprocess.run(
        [BIN / "cfn-lint", out / "sam.json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_policy_is_the_stage_file_scoped_to_its_path(package):
    stage, out = package
    template = json.loads((out / "sam.json").read_text())
    expected = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        (policy,) = role["Properties"]["Policies"]
        assert policy["PolicyDocument"] == expected
    actions = {a for s in expected["Statement"] for a in s["Action"]}
    assert actions == {
        "ssm:GetParametersByPath",
        "kms:Decrypt",
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    resources = [r for s in expected["Statement"] for r in _list(s["Resource"])]
    assert f"arn:aws:ssm:*:*:parameter/switchboard/{stage}/*" in resources
    assert not any("parameter/*" in r or r.endswith("parameter/switchboard/*") for r in resources)
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SWITCHBOARD_SSM_PATH"] == f"/switchboard/{stage}"


def test_webhooks_are_open_and_api_routes_use_iam(package):
    _, out = package
    template = json.loads((out / "sam.json").read_text())
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path in WEBHOOKS:
        for method in ("get", "post"):
            assert "security" not in paths[path][method]
    for path in API:
        assert paths[path]["post"]["security"] == [{"sigv4": []}]


def test_package_holds_the_app_and_nothing_local(package):
    _, out = package
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        names = bundle.namelist()
    assert "app.py" in names
    assert "chalicelib/webhooks.py" in names
    assert not any(n.startswith(("devkit/", "tests/", "boto3/", "botocore/")) for n in names)


def _list(value):
    return value if isinstance(value, list) else [value]
