"""`python -m devkit logs`: the app's JSON log lines, from the local stack or a stage's CloudWatch.

Locally they are .local/app.log, written by `make run`; with --stage they are the stage's Lambda
log groups (/aws/lambda/switchboard-<stage>...). Lines can be narrowed to one call or message by
the fields they carry; numbers are masked as the app logs them, so nothing here unmasks them.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from devkit import stack
from devkit.console import LOG_FILE

DURATION = _SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_seconds(text: str) -> float:
    """10m -> 600.0.

    Raises:
        SystemExit: not a number followed by s, m, h or d.
    """
    match = _SINCE.match(text.strip())
    if match is None:
        raise SystemExit(f"error: --since takes a number and s, m, h or d (10m), not {text!r}")
    return int(match[1]) * _UNITS[match[2]]


def wanted(record: dict[str, Any], args: argparse.Namespace, cutoff: float | None) -> bool:
    """Whether a parsed log line passes the filters."""
    if args.call_sid and record.get("call_sid") != args.call_sid:
        return False
    if args.message_sid and record.get("message_sid") != args.message_sid:
        return False
    if cutoff is not None:
        stamp = str(record.get("timestamp", "")).replace("Z", "+00:00")
        try:
            if datetime.fromisoformat(stamp).timestamp() < cutoff:
                return False
        except ValueError:
            return False
    return True


def _parsed(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # chalice local's own lines: not the app's
        if isinstance(record, dict):
            yield line.rstrip("\n"), record


def _local(args: argparse.Namespace, cutoff: float | None) -> int:
    try:
        handle = LOG_FILE.open(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit("error: no local log yet: start the stack with `make run`") from None
    with handle:
        while True:
            for line, record in _parsed(handle):
                if wanted(record, args, cutoff):
                    print(line, flush=True)
            if not args.follow:
                return 0
            time.sleep(0.5)


def _cloudwatch(args: argparse.Namespace, cutoff: float | None) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    start = int((cutoff if cutoff is not None else time.time() - 3600) * 1000)
    pattern = ""
    if args.call_sid:
        pattern = f'{{ $.call_sid = "{args.call_sid}" }}'
    elif args.message_sid:
        pattern = f'{{ $.message_sid = "{args.message_sid}" }}'
    try:
        logs = boto3.client("logs")
        groups = [
            g["logGroupName"]
            for page in logs.get_paginator("describe_log_groups").paginate(
                logGroupNamePrefix=f"/aws/lambda/switchboard-{args.stage}"
            )
            for g in page["logGroups"]
        ]
        while True:
            for group in groups:
                options: dict[str, Any] = {"logGroupName": group, "startTime": start}
                if pattern:
                    options["filterPattern"] = pattern
                for page in logs.get_paginator("filter_log_events").paginate(**options):
                    for event in page["events"]:
                        for line, record in _parsed([event["message"]]):
                            if wanted(record, args, cutoff):
                                print(line, flush=True)
                        start = max(start, event["timestamp"] + 1)
            if not args.follow:
                return 0
            time.sleep(2)
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"error: CloudWatch Logs could not be read ({exc})") from None


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the log lines that pass the filters (and keep following with --follow)."""
    cutoff = time.time() - since_seconds(args.since) if args.since else None
    return _cloudwatch(args, cutoff) if args.stage else _local(args, cutoff)


def add_parser(commands: Any) -> None:
    """The `logs` command."""
    logs = commands.add_parser("logs", help="the app's JSON log lines (local, or a stage's)")
    logs.add_argument("--stage", choices=stack.stages(), help="a deployed stage's CloudWatch")
    logs.add_argument("--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--call-sid", help="only lines about this call (CA...)")
    logs.add_argument("--message-sid", help="only lines about this message (SM...)")
    logs.add_argument("--since", help="only lines from this long ago on: 30s, 10m, 2h, 1d")
    logs.set_defaults(func=cmd_logs)
