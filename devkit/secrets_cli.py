"""`python -m devkit secrets list|get|put|delete`: a stage's parameters under /switchboard/<stage>.

Against the local stack while `make run` runs (its moto server), else against the AWS account of
the usual credentials. Values are masked unless --show; `put` prompts for the value (or reads
it from a pipe), so a secret never sits on a command line where `ps` and shell history see it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from devkit import stack

# Names kept encrypted (SecureString); everything else is a String.
SECRET_NAMES = frozenset(
    {"twilio/auth_token", "twilio/api_key_secret", "twilio/webhook_signing_keys"}
)


def _ssm() -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    from devkit import demo

    state = stack.read_state()
    if not state.get("moto_url"):
        try:
            return boto3.client("ssm")
        except BotoCoreError as exc:  # no region configured, typically
            raise SystemExit(f"error: AWS is not configured here ({exc})") from None
    return boto3.client(
        "ssm",
        endpoint_url=state["moto_url"],
        region_name=demo.REGION,
        aws_access_key_id=demo.AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=demo.AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _call(action: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return action()
    except NoCredentialsError:
        raise SystemExit(
            "error: no AWS credentials: configure them, or start the local stack with `make run`"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "ParameterNotFound":
            raise SystemExit("error: no such parameter") from None
        raise SystemExit(f"error: SSM refused: {code}") from None
    except BotoCoreError as exc:
        raise SystemExit(f"error: SSM could not be reached ({type(exc).__name__})") from None


def _path(args: argparse.Namespace) -> str:
    return f"/switchboard/{args.stage}"


def mask(value: str) -> str:
    """A value as the CLI shows it without --show: its length and last two characters."""
    return "*" * max(4, len(value) - 2) + value[-2:] if len(value) > 6 else "****"


def cmd_list(args: argparse.Namespace) -> int:
    """Every parameter of the stage, values masked unless --show."""
    ssm = _ssm()
    prefix = _path(args) + "/"

    def walk() -> list[dict[str, Any]]:
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=_path(args), Recursive=True, WithDecryption=True
        )
        return [p for page in pages for p in page["Parameters"]]

    found = _call(walk)
    if not found:
        local = " (the local stack seeds only the dev stage)" if stack.read_state() else ""
        raise SystemExit(f"error: no parameters under {_path(args)}: no such stage here{local}")
    for parameter in sorted(found, key=lambda p: p["Name"]):
        value = parameter["Value"] if args.show else mask(parameter["Value"])
        print(f"{parameter['Name'].removeprefix(prefix)}\t{parameter['Type']}\t{value}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """One parameter, masked unless --show."""
    ssm = _ssm()
    name = f"{_path(args)}/{args.name}"
    answer = _call(lambda: ssm.get_parameter(Name=name, WithDecryption=True))
    value = answer["Parameter"]["Value"]
    print(value if args.show else mask(value))
    return 0


def cmd_put(args: argparse.Namespace) -> int:
    """Write one parameter; the value is prompted for (or piped), never an argument."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"{args.name}: ")
    else:
        value = sys.stdin.readline().rstrip("\n")
    if not value.strip():
        raise SystemExit("error: an empty value; nothing written")
    kind = "SecureString" if args.name in SECRET_NAMES or args.secure else "String"
    ssm = _ssm()
    name = f"{_path(args)}/{args.name}"
    _call(lambda: ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True))
    print(f"put {name} ({kind})")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Remove one parameter."""
    ssm = _ssm()
    name = f"{_path(args)}/{args.name}"
    _call(lambda: ssm.delete_parameter(Name=name))
    print(f"deleted {name}")
    return 0


def add_parser(commands: Any) -> None:
    """The `secrets` command and its subcommands."""
    secrets = commands.add_parser("secrets", help="a stage's parameters in SSM (masked)")
    verbs = secrets.add_subparsers(dest="secrets_command", required=True)
    for name, func, about in (
        ("list", cmd_list, "every parameter of the stage"),
        ("get", cmd_get, "one parameter"),
        ("put", cmd_put, "write one parameter (the value is prompted for)"),
        ("delete", cmd_delete, "remove one parameter"),
    ):
        verb = verbs.add_parser(name, help=about)
        verb.add_argument("--stage", default="dev", choices=stack.stages())
        if name != "list":
            verb.add_argument("name", help="relative to the stage path, e.g. twilio/auth_token")
        if name in ("list", "get"):
            verb.add_argument("--show", action="store_true", help="print values unmasked")
        if name == "put":
            verb.add_argument("--secure", action="store_true", help="store as SecureString")
        verb.set_defaults(func=func)


def cmd_put_params(args: argparse.Namespace) -> int:
    """Write the stage's parameters to SSM; secrets are prompted for, never taken as arguments.

    AWS is checked before anything is asked: a missing region, credentials or endpoint is one
    line, not a traceback after the token was typed.
    """
    import boto3
    from botocore.exceptions import BotoCoreError

    path = f"/switchboard/{args.stage}"
    try:
        ssm = boto3.client("ssm")
    except BotoCoreError as exc:  # no region, typically
        raise SystemExit(f"error: AWS is not configured here: {exc}") from None
    # The cheapest call that proves region, credentials and endpoint: one page of one name.
    _call(lambda: ssm.get_parameters_by_path(Path=path, MaxResults=1))
    values: dict[str, tuple[str, str]] = {}
    if args.account_sid:
        values["twilio/account_sid"] = (args.account_sid, "String")
    if args.default_from:
        values["twilio/default_from"] = (args.default_from, "String")
    if args.auth_token:
        values["twilio/auth_token"] = (getpass.getpass("Twilio auth token: "), "SecureString")
    if args.api_key_sid:
        values["twilio/api_key_sid"] = (args.api_key_sid, "String")
        values["twilio/api_key_secret"] = (getpass.getpass("API key secret: "), "SecureString")
    for item in args.set:
        name, _, value = item.partition("=")
        values[name] = (value, "String")
    for name, (value, kind) in values.items():
        _call(lambda n=name, v=value, k=kind: ssm.put_parameter(
            Name=f"{path}/{n}", Value=v, Type=k, Overwrite=True))  # fmt: skip
        print(f"put {path}/{name} ({kind})")
    return 0


def add_put_params_parser(commands: Any) -> None:
    """`put-params`: a stage's Twilio parameters at once."""
    put = commands.add_parser("put-params", help="write a stage's parameters to SSM")
    put.add_argument("--stage", required=True, choices=stack.stages())
    put.add_argument("--account-sid")
    put.add_argument("--default-from", help="E.164 number or Messaging Service SID")
    put.add_argument("--auth-token", action="store_true", help="prompt for the auth token")
    put.add_argument("--api-key-sid", help="also prompts for the key's secret")
    put.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting such as voice/greeting=Hello",
    )
    put.set_defaults(func=cmd_put_params)
