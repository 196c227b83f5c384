"""`python -m devkit softphone add-user|users`: the softphone's Cognito users.

A deployed stage's pool is the SoftphoneUserPoolId output of its stack; without --stage, the
running local stack's pool in the moto server. `add-user` creates the user in the `softphone`
group with a one-time password, printed once, which the page replaces at the first sign-in.
"""

from __future__ import annotations

import argparse
import secrets
import string
from typing import Any

from devkit import cognito, numbers_cli, stack


def _client_and_pool(stage: str | None) -> tuple[Any, str]:
    import boto3

    if stage is None:
        state = stack.read_state()
        if not state.get("moto_url"):
            raise SystemExit("error: pass --stage, or start the local stack with `make run`")
        client = stack._client("cognito-idp", state["moto_url"])
        pools = _call(lambda: client.list_user_pools(MaxResults=60))["UserPools"]
        named = [p["Id"] for p in pools if p["Name"] == "switchboard-dev-softphone"]
        if not named:
            raise SystemExit("error: the local stack has no softphone user pool")
        return client, named[0]
    name = f"switchboard-{stage}"
    outputs = numbers_cli.stack_outputs(name)
    if "SoftphoneUserPoolId" not in outputs:
        raise SystemExit(f"error: the stack {name} has no SoftphoneUserPoolId output: redeploy")
    return boto3.client("cognito-idp"), outputs["SoftphoneUserPoolId"]


def _call(action: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return action()
    except NoCredentialsError:
        raise SystemExit("error: no AWS credentials: configure them") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = f"error: Cognito refused: {error.get('Code')}: {error.get('Message')}"
        raise SystemExit(message) from None
    except BotoCoreError as exc:
        raise SystemExit(f"error: Cognito could not be reached ({type(exc).__name__})") from None


def one_time_password() -> str:
    """16 characters meeting the pool's policy (upper, lower, digit), from `secrets`."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(16))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def cmd_add_user(args: argparse.Namespace) -> int:
    """Create a softphone user with a one-time password; prints it once."""
    from chalicelib.telephony import identities

    if not identities.valid(args.username):
        raise SystemExit(
            f"error: {args.username!r} cannot be a Twilio Client identity "
            "(letters, digits and _ . @ - only, at most 121)"
        )
    client, pool = _client_and_pool(args.stage)
    password = one_time_password()
    _call(lambda: cognito.add_user(client, pool, args.username, password))
    print(f"added {args.username} to the softphone group of {pool}")
    print(f"one-time password (shown once; replaced at the first sign-in): {password}")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """The softphone group's members."""
    client, pool = _client_and_pool(args.stage)
    answer = _call(
        lambda: client.list_users_in_group(UserPoolId=pool, GroupName=cognito.GROUP, Limit=60)
    )
    for user in answer.get("Users", []):
        print(f"{user['Username']}\t{user.get('UserStatus', '')}")
    return 0


def add_parser(commands: Any) -> None:
    """The `softphone` command and its subcommands."""
    softphone = commands.add_parser("softphone", help="the softphone page's users (Cognito)")
    verbs = softphone.add_subparsers(dest="softphone_command", required=True)
    add = verbs.add_parser("add-user", help="add a user to the softphone group")
    add.add_argument("username", help="the sign-in name, also the Twilio Client identity")
    add.set_defaults(func=cmd_add_user)
    users = verbs.add_parser("users", help="list the softphone group's users")
    users.set_defaults(func=cmd_users)
    for verb in (add, users):
        verb.add_argument(
            "--stage", choices=stack.stages(), help="a deployed stage (default: the local stack)"
        )
