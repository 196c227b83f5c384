"""Operator CLI: the local stack, the API, signed webhooks, a phone, numbers and parameters.

Against the local stack the defaults come from .local/stack.json; against a deployment pass
--api https://abc.execute-api.us-east-1.amazonaws.com/api (requests are signed with SigV4 from the
usual AWS credentials). Exit codes: 0 done; 1 refused or failed (an HTTP error from the API,
Twilio or AWS, a call that did not end normally, a watch that timed out); 2 a usage error.
Every error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

from devkit import (
    broadcast_cli,
    faults_cli,
    logs_cli,
    numbers_cli,
    phone_cli,
    secrets_cli,
    softphone_cli,
    stack,
)
from devkit.phone_cli import webhook_fields


def _api_base(args: argparse.Namespace) -> str:
    base = args.api or stack.read_state().get("app_url")
    if not base:
        sys.exit("No API: pass --api URL, or start the local stack with `make run`.")
    return base.rstrip("/")


def _region_of(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    if "execute-api" in parts:
        return parts[parts.index("execute-api") + 1]
    return None


def post_json(
    url: str,
    payload: dict[str, Any] | None,
    extra_headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
) -> tuple[int, Any]:
    """Call the API with JSON, signed with SigV4 for execute-api when AWS credentials exist."""
    import boto3
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    body = json.dumps(payload) if payload is not None else ""
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is not None:
        region = _region_of(url) or session.region_name or "us-east-1"
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        headers = dict(request.headers)
    try:
        response = requests.request(method, url, data=body or None, headers=headers, timeout=35)
    except requests.RequestException as exc:
        raise SystemExit(f"error: {url} could not be reached ({type(exc).__name__})") from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _print_result(status: int, data: Any) -> int:
    """The answer as JSON on stdout, or, for an error, one line on stderr: `error: to: …`."""
    if status >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            field = f"{error['field']}: " if error.get("field") else ""
            reason = f" ({error['reason']})" if error.get("reason") else ""
            message = f"{field}{error.get('message', '')}{reason}"
        else:
            message = str(data)[:300]
        print(f"error: HTTP {status}: {message}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if not isinstance(data, str) else data)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"to": args.to, "body": args.body}
    if args.sender:
        payload["from"] = args.sender
    if args.media_url:
        payload["media_urls"] = args.media_url
    if args.send_at:
        payload["send_at"] = args.send_at
    elif args.in_seconds:
        import time

        payload["send_at"] = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + args.in_seconds)
        )
    if args.timezone:
        payload["timezone"] = args.timezone
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    return _print_result(*post_json(_api_base(args) + "/messages", payload, headers))


# Where `status --watch` stops following a record.
FINAL = {
    "message": {"delivered", "undelivered", "failed", "canceled", "opted_out"},
    "call": {"completed", "busy", "no-answer", "canceled", "failed"},
}


def _finished(kind: str, data: Any) -> bool:
    if not isinstance(data, dict):
        return True
    if kind == "broadcast":
        counts = data.get("counts") or {}
        return not set(counts) & {"scheduled", "queued", "sending"}
    return data.get("status") in FINAL[kind]


def cmd_status(args: argparse.Namespace) -> int:
    import time

    if args.recipients:
        if args.kind != "broadcast":
            raise SystemExit("error: --recipients is for a broadcast")
        return _recipients(args)
    url = f"{_api_base(args)}/{args.kind}s/{args.id}"
    status, data = post_json(url, None, method="GET")
    deadline = time.monotonic() + args.timeout
    shown = None
    while args.watch and status == 200 and not _finished(args.kind, data):
        state = data.get("status") or data.get("counts")
        if state != shown:
            print(f"{args.kind} {args.id}: {state}", flush=True)
            shown = state
        if time.monotonic() > deadline:
            print(f"error: not finished after {args.timeout:.0f} s", file=sys.stderr)
            return 1
        time.sleep(args.interval)
        status, data = post_json(url, None, method="GET")
    return _print_result(status, data)


def _recipients(args: argparse.Namespace) -> int:
    """Every recipient of a broadcast with its message's status, page by page."""
    base = f"{_api_base(args)}/broadcasts/{args.id}?recipients=true&limit=100"
    token = None
    while True:
        status, data = post_json(base + (f"&next={token}" if token else ""), None, method="GET")
        if status != 200 or not isinstance(data, dict):
            return _print_result(status, data)
        for recipient in data.get("recipients", []):
            print(f"{recipient['to']}\t{recipient['status']}\t{recipient.get('sid') or ''}")
        token = data.get("next")
        if not token:
            return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    url = f"{_api_base(args)}/{args.kind}s/{args.id}"
    return _print_result(*post_json(url, None, method="DELETE"))


def cmd_inbound(args: argparse.Namespace) -> int:
    """GET /inbound; --since takes 10m like `logs`, or an ISO-8601 time as the API does."""
    import time

    from chalicelib.core import clock

    since = args.since
    if since and logs_cli.DURATION.match(since.strip()):
        since = clock.iso(time.time() - logs_cli.since_seconds(since))
    if args.limit is not None and args.limit < 1:
        usage(f"--limit must be 1 or more, not {args.limit}")
    query = {k: v for k, v in (("since", since), ("limit", args.limit)) if v}
    url = f"{_api_base(args)}/inbound" + ("?" + urlencode(query) if query else "")
    return _print_result(*post_json(url, None, method="GET"))


def cmd_call(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"to": args.to}
    for key in ("sender", "url", "twiml", "say"):
        value = getattr(args, key)
        if value:
            payload["from" if key == "sender" else key] = value
    return _print_result(*post_json(_api_base(args) + "/calls", payload))


def usage(message: str) -> NoReturn:
    """A usage error: one line on stderr, exit code 2 (as argparse's own)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def http_url(text: str, what: str) -> str:
    """text, if it is an absolute http(s) URL with a host; else a usage error naming what."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        usage(f"{what} {text!r} is not an http(s) URL (such as http://127.0.0.1:8000)")
    return text


def _params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            usage(f"--param takes NAME=VALUE, not {item!r}")
        params[name] = value
    return params


def cmd_webhook(args: argparse.Namespace) -> int:
    """Send a request signed as Twilio signs it, and print the answer."""
    import requests
    from twilio.request_validator import RequestValidator

    state = stack.read_state()
    token = args.auth_token or state.get("auth_token")
    if args.path.startswith(("http://", "https://")):
        url = http_url(args.path, "the webhook")  # the full URL, as `url` prints it
    elif not args.path.startswith("/"):
        usage(f"the webhook path {args.path!r} must start with / (/voice), or be a full URL")
    else:
        base = (args.url or state.get("app_url") or "").rstrip("/")
        if not base:
            raise SystemExit("error: pass a full URL or --url, or start the stack with make run")
        url = base + args.path
    if not token:
        raise SystemExit("error: pass --auth-token, or start the local stack with `make run`")
    params = {**webhook_fields(url, state.get("account_sid", "")), **_params(args.param)}
    validator = RequestValidator(token)
    try:
        if args.get:
            url += ("&" if "?" in url else "?") + urlencode(params)
            headers = {"X-Twilio-Signature": validator.compute_signature(url, {})}
            response = requests.get(url, headers=headers, timeout=20)
        else:
            headers = {"X-Twilio-Signature": validator.compute_signature(url, params)}
            response = requests.post(url, data=params, headers=headers, timeout=20)
    except requests.RequestException as exc:
        raise SystemExit(f"error: {url} could not be reached ({type(exc).__name__})") from None
    print(f"HTTP {response.status_code} {response.headers.get('Content-Type', '')}")
    print(response.text)
    return 0 if response.status_code < 400 else 1


def cmd_url(args: argparse.Namespace) -> int:
    """Print a twimlet's URL for the Twilio console, encoded as the twimlets encode their own."""
    import os

    from chalicelib.twimlets import TWIMLETS
    from chalicelib.twimlets.common import encode_query

    if args.name not in TWIMLETS:
        usage(f"unknown twimlet {args.name!r}: one of {', '.join(TWIMLETS)}")
    base = (
        args.base or os.environ.get("SWITCHBOARD_PUBLIC_URL") or stack.read_state().get("app_url")
    )
    if not base:
        usage("no base URL: pass --base, set SWITCHBOARD_PUBLIC_URL or start the local stack")
    http_url(base, "--base")
    grouped: dict[str, list[str]] = {}
    for item in args.param:
        name, separator, value = item.partition("=")
        if not separator or not name:
            usage(f"--param takes NAME=VALUE, not {item!r}")
        grouped.setdefault(name, []).append(value)
    # API Gateway hands the app repeated names grouped, so the URL is signed only if they are
    # adjacent; grouping keeps each name's values in order, which is all PHP arrays depend on.
    pairs = [(name, value) for name, values in grouped.items() for value in values]
    if [name for name, _ in pairs] != [item.partition("=")[0] for item in args.param]:
        print("note: repeated parameters were put next to each other", file=sys.stderr)
    query = encode_query(pairs)
    print(f"{base.rstrip('/')}/twimlets/{args.name}" + (f"?{query}" if query else ""))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from devkit.stack import run

    return run(port=args.port)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's commands and options."""
    parser = argparse.ArgumentParser(prog="python -m devkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the local stack (moto, fake Twilio, chalice local)")
    run.add_argument("--port", type=int, default=8000)
    run.set_defaults(func=cmd_run)

    send = commands.add_parser("send", help="send an SMS through POST /messages")
    send.add_argument("--to", required=True)
    send.add_argument("--body", default="")
    send.add_argument("--from", dest="sender")
    send.add_argument("--media-url", action="append")
    when = send.add_mutually_exclusive_group()
    when.add_argument("--send-at", help="ISO-8601 time, e.g. 2026-12-01T09:00:00Z")
    when.add_argument("--in", dest="in_seconds", type=int, help="send this many seconds from now")
    send.add_argument("--timezone", help="IANA zone for a --send-at without offset")
    send.add_argument("--idempotency-key")
    send.add_argument("--api", help="API base URL (default: the local stack)")
    send.set_defaults(func=cmd_send)

    show = commands.add_parser("status", help="show a message, call or broadcast by id")
    show.add_argument("kind", choices=["message", "call", "broadcast"])
    show.add_argument("id")
    show.add_argument("--watch", action="store_true", help="follow it until a final state")
    show.add_argument(
        "--recipients", action="store_true", help="a broadcast's recipients, each with its status"
    )
    show.add_argument("--interval", type=float, default=1.0, help="seconds between looks")
    show.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    show.add_argument("--api", help="API base URL (default: the local stack)")
    show.set_defaults(func=cmd_status)

    cancel = commands.add_parser("cancel", help="cancel a message or a broadcast not yet sent")
    cancel.add_argument("kind", choices=["message", "broadcast"])
    cancel.add_argument("id")
    cancel.add_argument("--api", help="API base URL (default: the local stack)")
    cancel.set_defaults(func=cmd_cancel)

    inbound = commands.add_parser("inbound", help="received messages, newest first")
    inbound.add_argument("--since", help="10m, 2h, 1d (as logs --since) or an ISO-8601 time")
    inbound.add_argument("--limit", type=int)
    inbound.add_argument("--api", help="API base URL (default: the local stack)")
    inbound.set_defaults(func=cmd_inbound)

    broadcast_cli.add_parser(commands)

    secrets_cli.add_parser(commands)
    logs_cli.add_parser(commands)
    softphone_cli.add_parser(commands)

    call = commands.add_parser("call", help="place a call through POST /calls")
    call.add_argument("--to", required=True)
    call.add_argument("--from", dest="sender")
    group = call.add_mutually_exclusive_group()
    group.add_argument("--url")
    group.add_argument("--twiml")
    group.add_argument("--say")
    call.add_argument("--api", help="API base URL (default: the local stack)")
    call.set_defaults(func=cmd_call)

    webhook = commands.add_parser("webhook", help="send a webhook signed as Twilio signs it")
    webhook.add_argument(
        "path", help="a route (/voice, /sms, /status/messages, ...) or the full URL `url` prints"
    )
    webhook.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    webhook.add_argument("--get", action="store_true", help="send as GET with a query string")
    webhook.add_argument("--url", help="app base URL (default: the local stack)")
    webhook.add_argument("--auth-token", help="default: the local stack's demo token")
    webhook.set_defaults(func=cmd_webhook)

    phone_cli.add_parser(commands)
    numbers_cli.add_parser(commands)
    faults_cli.add_parser(commands)

    url = commands.add_parser("url", help="print a twimlet's URL to paste into the Twilio console")
    url.add_argument("name", help="message, echo, forward, callme, simulring, findme, whisper, ...")
    url.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="e.g. PhoneNumbers[]=+1…"
    )
    url.add_argument(
        "--base",
        help="public base URL, e.g. https://abc.execute-api.us-east-1.amazonaws.com/api "
        "(default: SWITCHBOARD_PUBLIC_URL, else the local stack)",
    )
    url.set_defaults(func=cmd_url)

    secrets_cli.add_put_params_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    args = build_parser().parse_args(argv)
    return args.func(args)
