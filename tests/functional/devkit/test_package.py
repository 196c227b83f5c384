"""`chalice package` builds a deployable, least-privilege CloudFormation template offline."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devkit import deploy, extension_layer, moto_cloudformation
from devkit import package as package_module

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
WEBHOOKS = (
    "/voice", "/sms", "/fallback", "/status/messages", "/status/calls", "/voice/unanswered",
    "/client/voice",
)  # fmt: skip
EXPECTED_ACTIONS = {
    "ssm:GetParametersByPath",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "kms:Decrypt",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:Scan",
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


def test_cfn_lint_passes(package, tmp_path):
    stage, out = package
    result = subprocess.run(
        [BIN / "cfn-lint", out / "sam.json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _translate_and_lint(json.loads((out / "sam.json").read_text()), stage, tmp_path)


def _translate_and_lint(template: dict, stage: str, tmp_path: Path) -> dict:
    """SAM's transform, as CloudFormation runs it on the template `make deploy` uploads (code
    in the artifact bucket), must accept it; what it makes is plain CloudFormation, which
    cfn-lint then checks whole (SAM's own types are checked only by their schema). Returns it."""
    bucket = deploy.bucket_name("123456789012", "us-east-1")
    deploy.point_at_code(template, bucket, f"{stage}/{'0' * 64}.zip")
    made = moto_cloudformation.expand(
        template, {"Stage": stage}, region="us-east-1", account="123456789012"
    )
    assert not [r for r in made["Resources"].values() if r["Type"].startswith("AWS::Serverless")]
    functions = [r for r in made["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 4
    for function in functions:
        assert function["Properties"]["Code"] == {
            "S3Bucket": bucket,
            "S3Key": f"{stage}/{'0' * 64}.zip",
        }
    path = tmp_path / "translated.json"
    path.write_text(json.dumps(made))
    _lint(path)
    return made


ROLES = {
    "ApiHandlerRole": "policy-{stage}.json",
    "SendWorkerRole": "policy-{stage}-worker.json",
    "DispatchDueRole": "policy-{stage}-schedules.json",
    "ReconcileSendingRole": "policy-{stage}-schedules.json",
}


def test_each_function_has_its_own_stage_policy(package):
    """One role per function, each with the stage's file for it (tests/test_least_privilege.py
    checks the files against the code), template parameters in it substituted."""
    stage, out = package
    template = json.loads((out / "sam.json").read_text())
    roles = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert sorted(roles) == sorted(ROLES)
    actions = set()
    for name, role in roles.items():
        expected = json.loads((ROOT / ".chalice" / ROLES[name].format(stage=stage)).read_text())
        (policy,) = role["Properties"]["Policies"]
        text = json.dumps(expected).replace(
            '"${VoicemailFromAddress}"', '{"Fn::Sub": "${VoicemailFromAddress}"}'
        )
        assert policy["PolicyDocument"] == json.loads(text)
        actions |= {a for s in expected["Statement"] for a in _list(s["Action"])}
        resources = [r for s in expected["Statement"] for r in _list(s["Resource"])]
        # Nothing of the other stage, and no wildcard over a whole service's resources.
        other = "prod" if stage == "dev" else "dev"
        assert not any(other in r for r in resources)
        assert not any(
            r.endswith((":*", "parameter/*", "table/*")) and ":log-group:" not in r
            for r in resources
        )
        # Hold music from your own private bucket needs a statement you add for that bucket.
        assert not any(r.startswith("arn:aws:s3") for r in resources)
    assert actions == EXPECTED_ACTIONS
    assert "VoicemailFromAddress" in template["Parameters"]
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


def test_the_softphone_token_route_is_behind_the_stages_own_user_pool(package):
    _, out = package
    template = json.loads((out / "sam.json").read_text())
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert body["paths"]["/client/token"]["post"]["security"] == [{"SoftphoneUsers": []}]
    authorizer = body["securityDefinitions"]["SoftphoneUsers"]["x-amazon-apigateway-authorizer"]
    assert authorizer == {
        "type": "cognito_user_pools",
        "providerARNs": [{"Fn::GetAtt": ["SoftphoneUserPool", "Arn"]}],
    }
    pool = template["Resources"]["SoftphoneUserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}  # no sign-up
    client = template["Resources"]["SoftphoneUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False  # the page holds no secret
    assert "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]
    group = template["Resources"]["SoftphoneUsersGroup"]["Properties"]
    assert group["GroupName"] == "softphone"
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["SWITCHBOARD_USER_POOL_CLIENT_ID"] == {"Ref": "SoftphoneUserPoolClient"}
    # the page and its files are public: no authorizer
    for path in ("/phone", "/phone/{name}"):
        assert "security" not in body["paths"][path]["get"]


def test_package_holds_the_app_and_nothing_local(package):
    _, out = package
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        names = bundle.namelist()
    assert "app.py" in names
    assert "chalicelib/webhooks/gate.py" in names
    assert "chalicelib/browser/static/twilio.min.js" in names  # the page's files ship
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
            "twilio/base/version.py",
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
    for never_imported in ("twilio/rest/video/__init__.py", "twilio/rest/api/__init__.py"):
        assert compiled_name(never_imported) not in names
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
    # Each method its own throttle, by kind: junk on one route never throttles Twilio's.
    limits = {
        (s["ResourcePath"], s["HttpMethod"]): parameters[s["ThrottlingRateLimit"]["Ref"]]["Default"]
        for s in resources["RestAPI"]["Properties"]["MethodSettings"]
    }
    assert limits[("/*", "*")] == 10
    assert limits[("/~1voice", "POST")] == limits[("/~1status~1messages", "POST")] == 50
    assert limits[("/~1twimlets~1{name}", "POST")] == 20
    assert limits[("/~1messages", "POST")] == limits[("/~1calls", "POST")] == 20


def test_logs_alarms_and_backups_are_declared(package):
    """Each function writes to a log group the template declares, with a retention, whose name
    the stage's policy grants; alarms watch every function, the queues, 5xx and voicemail
    emails; the table has point-in-time recovery and encryption."""
    stage, out = package
    template = json.loads((out / "sam.json").read_text())
    resources, parameters = template["Resources"], template["Parameters"]
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    for function in functions:
        properties = resources[function]["Properties"]
        role = resources[properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        (policy,) = role["Policies"]
        (logs,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "WriteOwnLogs"]
        grants = [
            r.removeprefix("arn:aws:logs:*:*:log-group:").removesuffix(":*")
            for r in _list(logs["Resource"])
        ]
        group = resources[properties["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        name = group["LogGroupName"]["Fn::Sub"].replace("${Stage}", stage)
        assert any(fnmatch.fnmatchcase(name, grant) for grant in grants), (name, grants)
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        for kind in ("Errors", "Throttles"):
            alarm = resources[f"{function}{kind}Alarm"]["Properties"]
            assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    assert parameters["LogRetentionDays"]["Default"] == 30
    alarms = {
        r["Properties"]["MetricName"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} <= alarms
    assert {"5XXError", "VoicemailEmailFailures", "Errors", "Throttles"} <= alarms
    table = resources["MessagesTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


@pytest.fixture(scope="module")
def arm64_package(tmp_path_factory) -> tuple[str, Path]:
    """prod packaged from a copy of the project whose stage sets arm64, and SnapStart too when
    this Python can run it (3.12+; below, test_package_options.py checks the refusal)."""
    project = tmp_path_factory.mktemp("arm64-project")
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, project / name)
    for name in ("chalicelib", "infra"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".chalice").mkdir()
    for path in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(path, project / ".chalice" / path.name)
    config = json.loads((project / ".chalice" / "config.json").read_text())
    config["stages"]["prod"]["lambda_architecture"] = "arm64"
    if sys.version_info >= package_module.SNAPSTART_PYTHON:
        config["stages"]["prod"]["snapstart"] = True
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    out = tmp_path_factory.mktemp("package-arm64")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    code = "import sys; from pathlib import Path; from devkit.package import build; "
    code += "build('prod', Path(sys.argv[1]), Path(sys.argv[2]))"
    subprocess.run(
        [sys.executable, "-c", code, out, project],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )
    return "prod", out


def test_arm64_runs_every_function_with_the_arm64_builds(arm64_package):
    _, out = arm64_package
    template = json.loads((out / "sam.json").read_text())
    lookup = {"Fn::FindInMap": ["ParametersSecretsExtension", {"Ref": "AWS::Region"}, "Arm64Arn"]}
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) == 4
    for name, properties in functions.items():
        assert properties["Architectures"] == ["arm64"], name
        if "SnapStart" not in properties:
            assert properties["Layers"] == [lookup], name
    arns = template["Mappings"]["ParametersSecretsExtension"]
    assert arns["us-east-1"] == {
        "Arm64Arn": "arn:aws:lambda:us-east-1:177933569100:layer:"
        "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:24"
    }
    # Chalice packaged the aarch64 wheels of the compiled dependencies (aiohttp, yarl, ...).
    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        compiled = [n for n in bundle.namelist() if n.endswith(".so")]
    assert any("multidict/_multidict" in n for n in compiled)
    assert compiled and all("aarch64" in n for n in compiled), compiled


def _lint(path: Path) -> None:
    result = subprocess.run(
        [BIN / "cfn-lint", "--regions", "us-east-1", "eu-west-1", "--", path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_arm64_template_passes_cfn_lint(arm64_package, tmp_path):
    stage, out = arm64_package
    _lint(out / "sam.json")
    made = _translate_and_lint(json.loads((out / "sam.json").read_text()), stage, tmp_path)
    for resource in made["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            assert resource["Properties"]["Architectures"] == ["arm64"]


def test_snapstart_on_x86_64_invokes_the_alias_and_passes_cfn_lint(package, tmp_path):
    _check_snapstart(package[1], tmp_path)


def test_snapstart_on_arm64_invokes_the_alias_and_passes_cfn_lint(arm64_package, tmp_path):
    _check_snapstart(arm64_package[1], tmp_path)


def _check_snapstart(out: Path, tmp_path: Path) -> None:
    """SnapStart on an architecture's real template: packaged with it on (Python 3.12+), else
    merged into the template as a Python 3.13 packaging would emit it (only the runtime differs:
    Chalice takes it from the packaging Python)."""
    template = json.loads((out / "sam.json").read_text())
    resources = template["Resources"]
    if "SnapStart" not in resources["APIHandler"]["Properties"]:
        for resource in resources.values():
            if resource["Type"] == "AWS::Serverless::Function":
                resource["Properties"]["Runtime"] = "python3.13"
        package_module.enable_snapstart(template)
        extension_layer.add_to_template(template)
    handler = resources["APIHandler"]["Properties"]
    assert handler["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert handler["AutoPublishAlias"] == "live"
    assert handler["AutoPublishAliasAllProperties"] is True
    assert handler["VersionDeletionPolicy"] == "Delete"
    alias = {"Ref": "APIHandler.Alias"}
    # Every route's integration invokes the alias, none the unqualified function.
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    integrations = [
        operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in paths.values()
        for method, operation in path.items()
        if method != "options"
    ]
    assert len(integrations) >= len(WEBHOOKS) * 2 + len(API)
    for text, variables in integrations:
        assert "/functions/${APIHandlerAlias}/invocations" in text
        assert variables["APIHandlerAlias"] == alias
    assert "APIHandler.Arn" not in json.dumps(resources["RestAPI"])
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == alias
    # No extension on the SnapStart function (no AWS_SESSION_TOKEN there); the others keep it
    # and stay unversioned: the worker and the schedules are not what callers wait on.
    assert not any("ParametersSecretsExtension" in json.dumps(x) for x in handler.get("Layers", []))
    assert "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" not in handler["Environment"]["Variables"]
    for name in ("SendWorker", "DispatchDue", "ReconcileSending"):
        properties = resources[name]["Properties"]
        assert properties["Environment"]["Variables"]["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"]
        assert "SnapStart" not in properties and "AutoPublishAlias" not in properties
    path = tmp_path / "sam.json"
    path.write_text(json.dumps(template))
    _lint(path)
    # What SAM makes of it: a version and the `live` alias, every route and the permission on it.
    stage = template["Parameters"]["Stage"]["AllowedValues"][0]
    made = _translate_and_lint(template, stage, tmp_path)["Resources"]
    assert made["APIHandler"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    (version,) = [n for n, r in made.items() if r["Type"] == "AWS::Lambda::Version"]
    (alias,) = [n for n, r in made.items() if r["Type"] == "AWS::Lambda::Alias"]
    assert made[alias]["Properties"]["Name"] == "live"
    assert made[alias]["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
    assert made[version]["DeletionPolicy"] == "Delete"
    assert made["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": alias}
    uris = json.dumps(made["RestAPI"]["Properties"]["Body"]["paths"])
    assert json.dumps({"APIHandlerAlias": {"Ref": alias}})[1:-1] in uris
    assert "APIHandler.Arn" not in uris
