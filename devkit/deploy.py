"""`make deploy STAGE=prod` and `make destroy STAGE=prod`: a stage to AWS and back, in one command.

deploy: checks the AWS credentials and region first, creates or reuses the artifact bucket
(`switchboard-artifacts-<account>-<region>`: encrypted, public access blocked), packages the
stage (devkit/package.py), uploads the code and the template, creates and executes a change set
on the stack `switchboard-<stage>` (CloudFormation's own `deploy`), waits, and prints the
endpoint and the URLs to give Twilio; `--configure-number +1…` points that number at them.

destroy: deletes the stack and says what it keeps (the table is `Retain`; the parameters and the
artifact bucket are not the stack's) and how to delete each.

Every failure is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from devkit.stack import stages

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
WEBHOOKS = {
    "voice URL": "voice",
    "messaging URL": "sms",
    "voice fallback URL": "fallback",
    "voice status callback": "status/calls",
}


class DeployError(Exception):
    """A step failed: the message says which, and what to do."""


def stack_name(stage: str) -> str:
    return f"switchboard-{stage}"


def bucket_name(account: str, region: str) -> str:
    return f"switchboard-artifacts-{account}-{region}"


def _session(region: str | None) -> Any:
    import boto3

    # botocore reads AWS_DEFAULT_REGION (and the profile); Lambda and the CLI docs use AWS_REGION.
    session = boto3.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise DeployError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or pass --region")
    return session


def preflight(stage: str, region: str | None) -> tuple[Any, str]:
    """The session and the account id, once credentials, region and stage are known good.

    Raises:
        DeployError: no such stage, no region, no credentials, or credentials AWS refuses.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if stage not in stages():
        raise DeployError(
            f"no stage {stage!r} in .chalice/config.json (stages: {', '.join(stages())}); "
            "add one as README's Deploy section says"
        )
    session = _session(region)
    try:
        account = session.client("sts").get_caller_identity()["Account"]
    except NoCredentialsError:
        raise DeployError(
            "no AWS credentials: run `aws configure` or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DeployError(f"AWS refused the credentials ({code}): check them") from None
    except BotoCoreError as exc:
        raise DeployError(f"cannot reach AWS ({type(exc).__name__}): check the network") from None
    return session, account


def ensure_bucket(session: Any, account: str) -> str:
    """Create the artifact bucket if needed (encrypted, private); returns its name.

    Raises:
        DeployError: the name belongs to someone else, or S3 refused.
    """
    from botocore.exceptions import ClientError

    s3, region = session.client("s3"), session.region_name
    name = bucket_name(account, region)
    try:
        s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
        return name
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 403:
            raise DeployError(f"the bucket {name} exists and is not this account's") from None
        if status != 404:
            raise DeployError(f"S3 refused to check the bucket {name} ({status})") from None
    options = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=name, **options)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    print(f"created the artifact bucket {name} (encrypted, private)")
    return name


def point_at_code(template: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """template with every function's code at s3://bucket/key (chalice package names a local
    zip, which CloudFormation cannot read)."""
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return template


def upload(session: Any, bucket: str, stage: str, out: Path) -> str:
    """Upload the package's code and its template (pointing at that code); the template's URL."""
    s3 = session.client("s3")
    code = (out / "deployment.zip").read_bytes()
    code_key = f"{stage}/{hashlib.sha256(code).hexdigest()}.zip"
    s3.put_object(Bucket=bucket, Key=code_key, Body=code)
    template = point_at_code(json.loads((out / "sam.json").read_text()), bucket, code_key)
    body = json.dumps(template, indent=1).encode()
    template_key = f"{stage}/{hashlib.sha256(body).hexdigest()}.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=body)
    return f"https://{bucket}.s3.{session.region_name}.amazonaws.com/{template_key}"


def apply(session: Any, stage: str, template_url: str, overrides: dict[str, str]) -> dict[str, str]:
    """Create or update the stage's stack through a change set; returns its outputs.

    Raises:
        DeployError: the change set or the stack failed (CloudFormation's reason given).
    """
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError
    from botocore.parsers import ResponseParserError

    cloudformation, name = session.client("cloudformation"), stack_name(stage)
    existing = _stack(cloudformation, name)
    kind = "UPDATE" if existing and existing["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
    parameters = [{"ParameterKey": "Stage", "ParameterValue": stage}] + [
        {"ParameterKey": key, "ParameterValue": value} for key, value in overrides.items()
    ]
    change = f"deploy-{hashlib.sha256(template_url.encode()).hexdigest()[:12]}"
    try:
        cloudformation.create_change_set(
            StackName=name,
            ChangeSetName=change,
            ChangeSetType=kind,
            TemplateURL=template_url,
            Capabilities=CAPABILITIES,
            Parameters=parameters,
        )
        cloudformation.get_waiter("change_set_create_complete").wait(
            StackName=name, ChangeSetName=change, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
        )
    except WaiterError:
        found = cloudformation.describe_change_set(StackName=name, ChangeSetName=change)
        reason = found.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            print("no changes: the stack is up to date")
            return _outputs(cloudformation, name)
        raise DeployError(f"the change set failed: {reason}") from None
    except ClientError as exc:
        raise DeployError(f"CloudFormation refused the change set: {_message(exc)}") from None
    try:
        cloudformation.execute_change_set(StackName=name, ChangeSetName=change)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        detail = _message(exc) if isinstance(exc, ClientError) else type(exc).__name__
        raise DeployError(
            f"CloudFormation could not run the change set {change}: {detail}"
        ) from None
    waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
    try:
        cloudformation.get_waiter(waiter).wait(
            StackName=name, WaiterConfig={"Delay": 10, "MaxAttempts": 180}
        )
    except WaiterError:
        status = (_stack(cloudformation, name) or {}).get("StackStatus", "gone")
        raise DeployError(
            f"the stack {name} ended {status}: see its events in the CloudFormation console"
        ) from None
    return _outputs(cloudformation, name)


def _stack(cloudformation: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError:
        return None


def _outputs(cloudformation: Any, name: str) -> dict[str, str]:
    stack = _stack(cloudformation, name) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _message(exc: Any) -> str:
    return exc.response.get("Error", {}).get("Message", type(exc).__name__)


def webhook_urls(endpoint: str) -> dict[str, str]:
    """What to give Twilio, from the stack's EndpointURL (which ends in a slash)."""
    base = endpoint.rstrip("/")
    return {label: f"{base}/{route}" for label, route in WEBHOOKS.items()}


def deploy(stage: str, *, region: str | None = None, overrides: dict[str, str] | None = None,
           number: str | None = None) -> dict[str, str]:  # fmt: skip
    """Package and deploy stage; returns the stack's outputs.

    Raises:
        DeployError: any step, with what to do.
    """
    from devkit import package

    session, account = preflight(stage, region)
    bucket = ensure_bucket(session, account)
    with tempfile.TemporaryDirectory(prefix="switchboard-deploy-") as directory:
        out = Path(directory)
        try:
            package.build(stage, out)
        except package.PackagingError as exc:
            raise DeployError(f"cannot package the stage: {exc}") from None
        template_url = upload(session, bucket, stage, out)
    outputs = apply(session, stage, template_url, overrides or {})
    endpoint = outputs.get("EndpointURL")
    if not endpoint:
        raise DeployError(f"the stack {stack_name(stage)} has no EndpointURL output")
    print(f"deployed {stack_name(stage)}: {endpoint}")
    for label, url in webhook_urls(endpoint).items():
        print(f"  {label:24} {url}")
    if outputs.get("SoftphoneURL"):
        print(f"  {'softphone page':24} {outputs['SoftphoneURL']}")
        print(f"  {'TwiML App Voice URL':24} {endpoint.rstrip('/')}/client/voice")
    if number:
        _configure(number, endpoint)
    return outputs


def _configure(number: str, endpoint: str) -> None:
    from devkit import numbers_cli

    args = argparse.Namespace(number=number, base=endpoint.rstrip("/"), stage=None, stack=None)
    numbers_cli.cmd_configure(args)


def destroy(stage: str, *, region: str | None = None) -> None:
    """Delete the stage's stack and say what stays.

    Raises:
        DeployError: no such stack, or the deletion failed.
    """
    from botocore.exceptions import WaiterError

    session, account = preflight(stage, region)
    cloudformation, name = session.client("cloudformation"), stack_name(stage)
    if _stack(cloudformation, name) is None:
        raise DeployError(f"no stack {name} in {session.region_name}: nothing to destroy")
    cloudformation.delete_stack(StackName=name)
    try:
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=name, WaiterConfig={"Delay": 10, "MaxAttempts": 180}
        )
    except WaiterError:
        raise DeployError(f"the stack {name} could not be deleted: see its events") from None
    print(f"deleted the stack {name}. Kept, on purpose:")
    print(f"  the table switchboard-{stage} (DeletionPolicy Retain: messages, opt-outs). "
          f"Delete it: aws dynamodb delete-table --table-name switchboard-{stage}")  # fmt: skip
    print(f"  the parameters under /switchboard/{stage} (not the stack's). Delete them: aws ssm "
          f"get-parameters-by-path --path /switchboard/{stage} --recursive, then "
          "aws ssm delete-parameters --names …")  # fmt: skip
    print(f"  the softphone user pool switchboard-{stage}-softphone (Retain, deletion protection: "
          "its users). Delete it: turn deletion protection off, then aws cognito-idp "
          "delete-user-pool --user-pool-id …")  # fmt: skip
    print(f"  the artifact bucket {bucket_name(account, session.region_name)} (other stages use "
          "it). Delete it when none does: aws s3 rb --force s3://…")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.deploy", description=__doc__)
    parser.add_argument("action", choices=["deploy", "destroy"])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", help="default: AWS_REGION, AWS_DEFAULT_REGION or your profile")
    parser.add_argument("--configure-number", metavar="+1…", help="point this number at the stage")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="KEY=VALUE",
        help="a template parameter (LogLevel=DEBUG, AlarmTopicArn=…, VoicemailFromAddress=…)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.parameter:
        key, equals, value = item.partition("=")
        if not equals or not key:
            parser.error(f"--parameter takes KEY=VALUE, not {item!r}")
        overrides[key] = value
    try:
        if args.action == "deploy":
            deploy(
                args.stage, region=args.region, overrides=overrides, number=args.configure_number
            )
        else:
            destroy(args.stage, region=args.region)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
