"""`chalice package` builds a deployable, least-privilege CloudFormation template offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
WEBHOOKS = ("/voice", "/sms", "/fallback", "/status/messages", "/status/calls")
EXPECTED_ACTIONS = {
    "ssm:GetParametersByPath",
    "ssm:GetParameter",
    "kms:Decrypt",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "sqs:GetQueueUrl",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "ses:SendEmail",
}
API = ("/messages", "/calls", "/broadcasts", "/inbound")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["dev", "prod"])
def package(request, tmp_path_factory) -> tuple[str, Path]:
    stage = request.param
    out = tmp_path_factory.mktemp(f"package-{stage}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    # The package as README's deploy step builds it: chalice package, then bytecode added.
    subprocess.run(
        [sys.executable, "-m", "devkit.package", "--stage", stage, out],
        check=True,
        env=env,
        cwd=ROOT,
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
    assert actions == EXPECTED_ACTIONS
    resources = [r for s in expected["Statement"] for r in _list(s["Resource"])]
    assert f"arn:aws:ssm:*:*:parameter/switchboard/{stage}/*" in resources
    assert f"arn:aws:dynamodb:*:*:table/switchboard-{stage}" in resources
    assert f"arn:aws:sqs:*:*:switchboard-{stage}-send" in resources
    # Nothing of the other stage, and no wildcard over a whole service's resources.
    other = "prod" if stage == "dev" else "dev"
    assert not any(other in r for r in resources)
    assert not any(r.endswith((":*", "parameter/*", "table/*")) for r in resources)
    # Hold music from your own private bucket needs a statement you add for that bucket.
    assert not any(r.startswith("arn:aws:s3") for r in resources)
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
        for method, operation in paths[path].items():
            if method != "options":
                assert operation["security"] == [{"sigv4": []}], (path, method)


def test_package_holds_the_app_and_nothing_local(package):
    _, out = package
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        names = bundle.namelist()
    assert "app.py" in names
    assert "chalicelib/webhooks/gate.py" in names
    assert not any(n.startswith(("devkit/", "tests/", "boto3/", "botocore/")) for n in names)


def test_package_ships_valid_bytecode_for_what_cold_starts_import(package):
    import importlib.util

    from devkit.package import compiled_name

    _, out = package
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        names = set(bundle.namelist())
        for source in (
            "app.py",
            "chalicelib/webhooks/gate.py",
            "chalicelib/aws/storage.py",
            "chalicelib/twimlets/dialing.py",
            "chalice/app.py",
            "twilio/twiml/voice_response.py",
            "twilio/rest/__init__.py",
            "twilio/rest/api/v2010/account/message/__init__.py",
            "requests/sessions.py",
        ):
            pyc = bundle.read(compiled_name(source))
            flags = int.from_bytes(pyc[4:8], "little")
            assert flags == 0b01, source  # hash-based, source not checked: mtimes do not matter
            assert pyc[8:16] == importlib.util.source_hash(bundle.read(source)), source
        # Every .pyc is fresh (none left from the working tree) and has its source beside it.
        for name in names:
            if name.endswith(".pyc"):
                folder, _, file = name.rpartition("__pycache__/")
                assert folder + file.split(".")[0] + ".py" in names, name
    assert compiled_name("twilio/rest/video/__init__.py") not in names  # never imported
    assert (out / "deployment.zip").stat().st_size <= 10_000_000


def test_the_unzipped_package_runs_from_its_bytecode(package, tmp_path):
    _, out = package
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        bundle.extractall(tmp_path)
    # Break a source file: an import that still works came from the .pyc, unchecked.
    with open(tmp_path / "chalicelib" / "core" / "errors.py", "a") as source:
        source.write("\nraise SystemExit('compiled from source')\n")
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import app, chalicelib.core.errors; print(chalicelib.core.errors.__file__)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "chalicelib" / "core" / "errors.py")


def _list(value):
    return value if isinstance(value, list) else [value]


def test_resources_match_each_stage_and_report_batch_failures(package):
    stage, out = package
    template = json.loads((out / "sam.json").read_text())
    resources = template["Resources"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    variables = config["stages"][stage]["environment_variables"]
    assert resources["MessagesTable"]["Properties"]["TableName"] == {
        "Fn::Sub": "switchboard-${Stage}"
    }
    # The worker's event source names its queue at packaging time, from the stage's config;
    # the template names it from the Stage parameter. Both must agree for every stage.
    source = resources["SendWorker"]["Properties"]["Events"]["SendWorkerSqsEventSource"]
    assert source["Properties"]["Queue"]["Fn::Sub"].endswith(":" + variables["SWITCHBOARD_QUEUE"])
    assert variables["SWITCHBOARD_QUEUE"] == f"switchboard-{stage}-send"
    assert variables["SWITCHBOARD_TABLE"] == f"switchboard-{stage}"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
    redrive = resources["SendQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert resources["SendDeadLetterQueue"]["Properties"]["QueueName"] == {
        "Fn::Sub": "switchboard-${Stage}-send-dlq"
    }
    for function in ("APIHandler", "SendWorker", "DispatchDue", "ReconcileSending"):
        env = resources[function]["Properties"]["Environment"]["Variables"]
        assert env["SWITCHBOARD_TABLE"] == {"Ref": "MessagesTable"}


def test_functions_carry_the_parameters_extension(package):
    _, out = package
    resources = json.loads((out / "sam.json").read_text())["Resources"]
    for function in ("APIHandler", "SendWorker", "DispatchDue", "ReconcileSending"):
        properties = resources[function]["Properties"]
        # The region's layer, from a mapping: tests/functional/test_extension_layer.py resolves it.
        lookup = {"Fn::FindInMap": ["ParametersSecretsExtension", {"Ref": "AWS::Region"}, "Arn"]}
        assert lookup in properties["Layers"]
        variables = properties["Environment"]["Variables"]
        assert variables["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] == "2773"


def test_a_flood_on_the_api_cannot_starve_the_worker_or_the_schedules(package):
    _, out = package
    template = json.loads((out / "sam.json").read_text())
    resources, parameters = template["Resources"], template["Parameters"]

    def reserved(function: str) -> int | None:
        value = resources[function]["Properties"]["ReservedConcurrentExecutions"]
        condition, when_set, otherwise = value["Fn::If"]
        assert otherwise == {"Ref": "AWS::NoValue"}  # 0 deploys where nothing can be reserved
        (test,) = template["Conditions"][condition]["Fn::Not"]
        assert test["Fn::Equals"][0] == when_set
        return parameters[when_set["Ref"]]["Default"]

    functions = [
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]
    assert sorted(functions) == ["APIHandler", "DispatchDue", "ReconcileSending", "SendWorker"]
    assert all(reserved(name) >= 1 for name in functions)
    (throttle,) = resources["RestAPI"]["Properties"]["MethodSettings"]
    assert (throttle["ResourcePath"], throttle["HttpMethod"]) == ("/*", "*")
    assert parameters[throttle["ThrottlingRateLimit"]["Ref"]]["Default"] == 50
    assert parameters[throttle["ThrottlingBurstLimit"]["Ref"]]["Default"] == 100
