"""`python -m devkit faults aws ...`: the local stack's AWS faults (devkit/aws_faults.py).

Talks to the moto server's ``/_faults`` endpoint, found in .local/stack.json (or --moto-url).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from devkit import stack


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def request(url: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET url, or POST payload as JSON; the status and the parsed answer."""
    import requests

    try:
        if payload is None:
            response = requests.get(url, timeout=5)
        else:
            response = requests.post(url, json=payload, timeout=5)
    except requests.RequestException as exc:
        raise SystemExit(f"error: {url} could not be reached ({type(exc).__name__})") from None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def cmd_faults(args: argparse.Namespace) -> int:
    """Show, configure, script or reset the moto server's faults."""
    base = (args.moto_url or stack.read_state().get("moto_url") or "").rstrip("/")
    if not base:
        raise SystemExit("error: no moto server: pass --moto-url, or start the stack (make run)")
    config = {
        key: value
        for key, value in (
            ("rate", args.rate),
            ("faults", _names(args.faults) if args.faults else None),
            ("operations", _names(args.operations) if args.operations else None),
            ("seed", args.seed),
            ("hang_seconds", args.hang_seconds),
        )
        if value is not None
    }
    if args.match is not None and not args.script:
        raise SystemExit("error: --match goes with --script")
    if sum(map(bool, (config, args.script, args.reset))) > 1:
        raise SystemExit("error: one of --reset, --script or the --rate settings at a time")
    if args.reset:
        status, data = request(f"{base}/_faults/reset", {})
    elif args.script:
        operation, faults = args.script
        payload = {"operation": operation, "faults": _names(faults), "match": args.match}
        status, data = request(f"{base}/_faults/script", payload)
    elif config:
        status, data = request(f"{base}/_faults/config", config)
    else:
        status, data = request(f"{base}/_faults")
    if status >= 400:
        message = data.get("error") if isinstance(data, dict) else data
        print(f"error: {message}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2))
    return 0


def add_parser(commands: Any) -> None:
    """The `faults` command."""
    faults = commands.add_parser(
        "faults",
        help="make the local stack's AWS fail as AWS does (500, throttle, hang, lost)",
        description="Without options: show the settings and the faults given so far. "
        "--rate etc. replace the settings (unset ones take their defaults) and forget scripts.",
    )
    faults.add_argument("target", choices=["aws"])
    faults.add_argument("--rate", type=float, help="share of requests that get a fault, 0-1")
    faults.add_argument(
        "--faults", help="comma-separated: 500, throttle, throttle-ThrottlingException, hang, lost"
    )
    faults.add_argument(
        "--operations", help="comma-separated, e.g. dynamodb:PutItem,sqs:SendMessage"
    )
    faults.add_argument("--seed", type=int)
    faults.add_argument("--hang-seconds", type=float, help="how long a hang holds (default 12)")
    faults.add_argument(
        "--script",
        nargs=2,
        metavar=("OPERATION", "FAULTS"),
        help="the next requests of OPERATION get FAULTS in order (comma-separated, ok passes)",
    )
    faults.add_argument("--match", help="with --script: only requests whose body contains this")
    faults.add_argument("--reset", action="store_true", help="all faults off, log cleared")
    faults.add_argument("--moto-url", help="default: the local stack's moto server")
    faults.set_defaults(func=cmd_faults)
