"""`python -m devkit.fake_twilio`: serve the local Twilio API on its own, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import threading

from devkit import demo
from devkit.fake_twilio import FakeTwilio


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Twilio until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m devkit.fake_twilio", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    # Environment defaults keep the token off the command line, where `ps` shows it.
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID"))
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"))
    parser.add_argument("--api-key", action="append", default=[], metavar="SK...:SECRET")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--number",
        action="append",
        default=[],
        metavar="+E164",
        help="a number the account owns (default: the demo number)",
    )
    parser.add_argument(
        "--complete-after",
        type=float,
        default=1.0,
        help="seconds until a message is delivered and a call completed (-1: never)",
    )
    args = parser.parse_args(argv)
    if not args.account_sid or not args.auth_token:
        parser.error("give --account-sid and --auth-token (or TWILIO_ACCOUNT_SID/_AUTH_TOKEN)")
    keys = {}
    for key_sid, colon, secret in (key.partition(":") for key in args.api_key):
        if not colon:
            parser.error("--api-key takes SK...:SECRET")
        keys[key_sid] = (secret, args.account_sid)
    fake = FakeTwilio(
        accounts={args.account_sid: args.auth_token},
        api_keys=keys,
        host=args.host,
        port=args.port,
        latency=args.latency,
    )
    fake.complete_after = None if args.complete_after < 0 else args.complete_after
    for number in args.number or [demo.NUMBER]:
        fake.numbers.add(args.account_sid, number)
    print(f"Fake Twilio on {fake.start()} for {args.account_sid}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
