"""Least privilege, proven against the code: every AWS action the deployed code can call is
granted to the stage's functions, and every action granted is one the code or the platform calls.

The code's calls are read from its syntax (chalicelib/): the operations named in storage's and
queue's `_call`/`_call_raw`, botocore client methods (`ssm.get_parameters`, `send_email`, …)
and paginators, in the modules that build a client of that service. What the platform calls with
a function's role (the SQS event source, Lambda's logs, SSM's decryption) is listed with why.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("dynamodb", "sqs", "ssm", "ses", "s3")
# IAM authorises some operations as others.
AS_ACTIONS = {
    "dynamodb:TransactWriteItems": {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    },
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
}
PLATFORM = {
    "sqs:ReceiveMessage": "the SQS event source polls the send queue with the worker's role",
    "sqs:DeleteMessage": "the event source deletes the records the worker handled",
    "sqs:GetQueueAttributes": "the event source reads the queue when it is created",
    "logs:CreateLogStream": "Lambda writes each function's logs with its role",
    "logs:PutLogEvents": "Lambda writes each function's logs with its role",
    "kms:Decrypt": "SSM decrypts SecureString parameters as the caller (kms:ViaService ssm)",
}
# Called by the code but granted by the owner for their own resources (README, Deploy).
OWNER_GRANTS = {
    "s3:ListBucket": "hold music from a private bucket: the owner adds a statement for it",
}
STAGES = ("dev", "prod")


def _operations() -> dict[str, dict[str, str]]:
    """service -> snake_case method name -> operation name, from botocore's models."""
    session = botocore.session.get_session()
    found = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        found[service] = {botocore.xform_name(name): name for name in model.operation_names}
    return found


def code_actions() -> dict[str, set[str]]:
    """IAM action -> the modules calling it, for every AWS call under chalicelib/."""
    operations = _operations()
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = str(path.relative_to(ROOT))
        services = {
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in SERVICES
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Attribute):
                name = node.func.attr
            elif isinstance(node.func, ast.Name):
                name = node.func.id
            else:
                continue
            first = node.args[0] if node.args else None
            literal = first.value if isinstance(first, ast.Constant) else None
            for service in services:
                operation = None
                if name in ("_call", "_call_raw") and isinstance(literal, str):
                    operation = literal
                elif name == "get_paginator" and isinstance(literal, str):
                    operation = operations[service][literal]
                elif name in operations[service]:
                    operation = operations[service][name]
                if operation is not None:
                    found.setdefault(f"{service}:{operation}", set()).add(module)
    return found


def granted(stage: str) -> dict[str, set[str]]:
    """Policy file -> its actions, for each policy the stage's functions use."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    files = {config["stages"][stage]["iam_policy_file"]}
    for function in config["stages"][stage].get("lambda_functions", {}).values():
        files.add(function.get("iam_policy_file", config["stages"][stage]["iam_policy_file"]))
    policies = {}
    for name in sorted(files):
        document = json.loads((ROOT / ".chalice" / name).read_text())
        policies[name] = {
            action for statement in document["Statement"] for action in _list(statement["Action"])
        }
    return policies


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _needed() -> set[str]:
    needed = set()
    for action in code_actions():
        needed |= AS_ACTIONS.get(action, {action})
    return needed


def test_the_code_calls_what_this_test_expects_to_find():
    """The scan itself: it finds the calls it exists for, so an empty scan cannot pass."""
    actions = code_actions()
    for action in ("dynamodb:GetItem", "dynamodb:TransactWriteItems", "sqs:SendMessageBatch"):
        assert action in actions
    assert {"ssm:GetParametersByPath", "ssm:GetParameters", "ses:SendEmail"} <= set(actions)


@pytest.mark.parametrize("stage", STAGES)
def test_every_action_the_code_calls_is_granted(stage):
    grants = set().union(*granted(stage).values())
    missing = _needed() - grants - set(OWNER_GRANTS)
    assert not missing, f"code calls actions no {stage} policy grants: {sorted(missing)}"


@pytest.mark.parametrize("stage", STAGES)
def test_every_action_granted_is_called(stage):
    for policy, actions in granted(stage).items():
        unused = actions - _needed() - set(PLATFORM)
        assert not unused, f"{policy} grants actions nothing calls: {sorted(unused)}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_internet_facing_function_cannot_consume_the_queue_or_send_email(stage):
    api = granted(stage)[f"policy-{stage}.json"]
    assert not api & {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "ses:SendEmail",
    }
    worker = granted(stage)[f"policy-{stage}-worker.json"]
    assert "dynamodb:BatchWriteItem" not in worker  # only the API writes a broadcast's batch


@pytest.mark.parametrize("stage", STAGES)
def test_resources_are_the_stages_own(stage):
    for name in granted(stage):
        document = json.loads((ROOT / ".chalice" / name).read_text())
        for statement in document["Statement"]:
            for resource in _list(statement["Resource"]):
                if resource == "arn:aws:kms:*:*:key/*":
                    # KMS keys are the account's (aws/ssm or yours): the conditions pin
                    # decryption to SSM and to this stage's parameters.
                    assert statement["Action"] == ["kms:Decrypt"], statement
                    context = statement["Condition"]["StringLike"]
                    assert context["kms:EncryptionContext:PARAMETER_ARN"].endswith(
                        f"parameter/switchboard/{stage}/*"
                    )
                    continue
                assert resource != "*", statement
                other = "prod" if stage == "dev" else "dev"
                assert f"switchboard-{other}" not in resource and f"/{other}" not in resource
                assert re.search(rf"switchboard[-/]{stage}", resource) or ":ses:" in resource


@pytest.mark.parametrize("stage", STAGES)
def test_parliament_finds_nothing(stage):
    """duo-labs' parliament checks each policy's actions, resources and conditions against
    AWS's IAM reference, offline (community auditors included)."""
    from parliament import analyze_policy_string

    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    wide = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    assert analyze_policy_string(wide).findings  # the linter runs and sees what it should
    for name in granted(stage):
        text = (ROOT / ".chalice" / name).read_text()
        policy = analyze_policy_string(text, include_community_auditors=True)
        findings = [(f.issue, f.detail) for f in policy.findings]
        assert not findings, f"{name}: {findings}"
