"""`python -m devkit numbers list|configure`: a Twilio number's webhooks, pointed at a deployment.

Against the local stack (the default while `make run` runs) it talks to the local Twilio;
against a real account it needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or an API key pair in
TWILIO_API_KEY/TWILIO_API_SECRET) in the environment, never on the command line.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from devkit import stack

# The fields `configure` sets, and the app route each points at.
ROUTES = {
    "voice_url": "/voice",
    "voice_fallback_url": "/fallback",
    "sms_url": "/sms",
    "status_callback": "/status/calls",
}
_SHOWN = (
    "phone_number",
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "sms_url",
    "sms_method",
    "status_callback",
)


def _client() -> Any:
    """A twilio Client for the local stack, or for the account in the environment."""
    from twilio.rest import Client

    account = os.environ.get("TWILIO_ACCOUNT_SID")
    if account:
        key, secret = os.environ.get("TWILIO_API_KEY"), os.environ.get("TWILIO_API_SECRET")
        token = os.environ.get("TWILIO_AUTH_TOKEN")
        if key and secret:
            return Client(key, secret, account)
        if token:
            return Client(account, token)
        raise SystemExit("error: TWILIO_ACCOUNT_SID is set without TWILIO_AUTH_TOKEN")
    state = stack.read_state()
    if not state.get("twilio_url"):
        raise SystemExit(
            "error: no Twilio credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN, "
            "or start the local stack with `make run`"
        )
    client = Client(state["account_sid"], state["auth_token"])
    client.api.base_url = state["twilio_url"]
    client.region = client.edge = None
    return client


def _view(number: Any) -> dict[str, Any]:
    return {field: getattr(number, field, None) for field in _SHOWN}


def _call(action: Any) -> Any:
    from requests.exceptions import RequestException
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        return action()
    except TwilioRestException as exc:
        raise SystemExit(f"error: Twilio refused: HTTP {exc.status}, code {exc.code}") from None
    except TwilioException as exc:  # a list page refused: the text holds Twilio's answer
        raise SystemExit(f"error: Twilio refused: {str(exc).splitlines()[0][:200]}") from None
    except RequestException as exc:
        raise SystemExit(f"error: Twilio could not be reached ({type(exc).__name__})") from None


def cmd_list(args: argparse.Namespace) -> int:
    """`numbers list`: each number and where its webhooks point."""
    client = _client()
    for number in _call(lambda: client.incoming_phone_numbers.list(limit=100)):
        print(json.dumps(_view(number)))
    return 0


def stack_outputs(name: str) -> dict[str, str]:
    """A CloudFormation stack's outputs by key.

    Raises:
        SystemExit: no AWS access, or no such stack.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        (found,) = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"error: cannot read the stack {name} ({type(exc).__name__})") from None
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def stage_url(stage: str, stack: str | None = None) -> str:
    """A deployed stage's base URL: the EndpointURL output of its CloudFormation stack
    (switchboard-<stage>, as the README's deploy step names it).

    Raises:
        SystemExit: no AWS access, no such stack, or no EndpointURL in it.
    """
    name = stack or f"switchboard-{stage}"
    outputs = stack_outputs(name)
    if "EndpointURL" not in outputs:
        raise SystemExit(f"error: the stack {name} has no EndpointURL output")
    return outputs["EndpointURL"]


def cmd_configure(args: argparse.Namespace) -> int:
    """`numbers configure NUMBER --base URL|--stage STAGE`: point its webhooks at the app."""
    base = (args.base or stage_url(args.stage, args.stack)).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SystemExit(f"error: --base must be an http(s) URL, not {args.base!r}")
    client = _client()
    found = _call(lambda: client.incoming_phone_numbers.list(phone_number=args.number, limit=1))
    if not found:
        raise SystemExit(f"error: {args.number} is not a number of this account")
    before = found[0]
    changes = {field: base + route for field, route in ROUTES.items()}
    after = _call(
        lambda: client.incoming_phone_numbers(before.sid).update(
            voice_method="POST", sms_method="POST", **changes
        )
    )
    print("before: " + json.dumps(_view(before)))
    print("after:  " + json.dumps(_view(after)))
    return 0


def add_parser(commands: Any) -> None:
    """The `numbers` command and its subcommands."""
    numbers = commands.add_parser("numbers", help="list numbers, or point one at the app")
    verbs = numbers.add_subparsers(dest="numbers_command", required=True)
    listing = verbs.add_parser("list", help="each number and where its webhooks point")
    listing.set_defaults(func=cmd_list)
    configure = verbs.add_parser(
        "configure", help="point a number's voice, messaging, fallback and status URLs at the app"
    )
    configure.add_argument("number", help="the number, E.164 (+15005550006)")
    where = configure.add_mutually_exclusive_group(required=True)
    where.add_argument("--base", help="the app's base URL, stage included (…/api)")
    where.add_argument(
        "--stage", choices=stack.stages(), help="the deployed stage (its stack's EndpointURL)"
    )
    configure.add_argument("--stack", help="the stack's name (default switchboard-<stage>)")
    configure.set_defaults(func=cmd_configure)
