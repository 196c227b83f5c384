"""Create the table and queues of infra/resources.json in the moto server, as CloudFormation would.

The same file is merged into the deployed template by `chalice package --merge-template`, so the
local stack and the tests run against exactly the declared keys, indexes and redrive policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "resources.json"


def load_template() -> dict[str, Any]:
    """The resources template as a dict."""
    return json.loads(TEMPLATE.read_text())


def _resolve(value: Any, stage: str, arns: dict[str, str]) -> Any:
    """The few intrinsic functions the template uses: Fn::Sub on ${Stage}, Fn::GetAtt …Arn."""
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            return value["Fn::Sub"].replace("${Stage}", stage)
        if "Fn::GetAtt" in value:
            name, attribute = value["Fn::GetAtt"]
            if attribute != "Arn":
                raise ValueError(f"unsupported attribute {attribute}")
            return arns[name]
        return {k: _resolve(v, stage, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, stage, arns) for v in value]
    return value


def names(stage: str) -> dict[str, str]:
    """Logical resource id -> physical name for the stage."""
    resources = load_template()["Resources"]
    found = {}
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        name = props.get("TableName") or props.get("QueueName")
        if resource.get("Type") in ("AWS::DynamoDB::Table", "AWS::SQS::Queue") and name:
            found[logical] = _resolve(name, stage, {})
    return found


def create(stage: str, *, dynamodb: Any, sqs: Any) -> dict[str, str]:
    """Create every table and queue of the template for stage; returns logical id -> name."""
    resources = load_template()["Resources"]
    arns: dict[str, str] = {}
    created: dict[str, str] = {}
    queues = {k: v for k, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"}
    # Dead-letter queues first: the main queue's redrive policy names their ARN.
    for logical in sorted(queues, key=lambda k: "RedrivePolicy" in queues[k]["Properties"]):
        props = _resolve(queues[logical]["Properties"], stage, arns)
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in props.items()
            if key
            in (
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "RedrivePolicy",
                "DelaySeconds",
                "ReceiveMessageWaitTimeSeconds",
            )
        }
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
        arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        created[logical] = props["QueueName"]
    for logical, resource in resources.items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = _resolve(resource["Properties"], stage, arns)
        request = {
            key: props[key]
            for key in (
                "TableName",
                "AttributeDefinitions",
                "KeySchema",
                "GlobalSecondaryIndexes",
                "BillingMode",
            )
            if key in props
        }
        dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)
        created[logical] = props["TableName"]
    return created
