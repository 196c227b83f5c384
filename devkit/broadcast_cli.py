"""`python -m devkit broadcast`: one body to many numbers, from a list, a text file or a CSV."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

# Header names a CSV's phone column goes by, when --column does not say.
PHONE_HEADERS = ("phone", "to", "number", "phone_number", "mobile")
_SEPARATORS = re.compile(r"[\s().\-]")


def normalise(written: str) -> str:
    """A number as people write it, as E.164 where it can be read: (510) 555-1002 and
    510-555-1002 are NANP (+1); anything else is passed on as written, for the API to judge."""
    compact = _SEPARATORS.sub("", written.strip())
    if compact.startswith("+"):
        return compact
    if compact.isdigit() and len(compact) == 10:
        return "+1" + compact
    if compact.isdigit() and len(compact) == 11 and compact.startswith("1"):
        return "+" + compact
    return written.strip()


def _from_csv(source: str, column: str | None) -> list[str]:
    try:
        with open(source, newline="") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except OSError as exc:
        raise SystemExit(f"error: cannot read {source}: {exc.strerror}") from None
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    has_header = not normalise(rows[0][0]).lstrip("+").isdigit()
    index = 0
    if column is not None:
        if not has_header or column.lower() not in header:
            raise SystemExit(f"error: {source} has no column {column!r} (columns: {header})")
        index = header.index(column.lower())
    elif has_header:
        index = next((header.index(h) for h in PHONE_HEADERS if h in header), 0)
    body = rows[1:] if has_header else rows
    return [row[index].strip() for row in body if len(row) > index and row[index].strip()]


def recipients(source: str, column: str | None = None) -> list[str]:
    """Numbers from "+1..,+1..", "@file.txt" (one a line or comma-separated) or "file.csv" (its
    phone column: --column, else a header named phone/to/number, else the first), normalised.

    Raises:
        SystemExit: a file cannot be read, the column does not exist, or there is nobody.
    """
    if source.endswith(".csv") and not source.startswith("@"):
        written = _from_csv(source, column)
    else:
        text = source
        if source.startswith("@"):
            try:
                text = Path(source[1:]).read_text()
            except OSError as exc:
                raise SystemExit(f"error: cannot read {source[1:]}: {exc.strerror}") from None
        written = [n for n in text.replace("\n", ",").split(",") if n.strip()]
    numbers = [normalise(n) for n in written]
    if not numbers:
        raise SystemExit(f"error: no recipients in {source!r}")
    return numbers


def cmd_broadcast(args: argparse.Namespace) -> int:
    from devkit.cli import _api_base, _print_result, post_json

    numbers = recipients(args.to, args.column)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    payload: dict[str, Any] = {"to": numbers, "body": args.body}
    for field in ("send_at", "timezone", "not_before", "not_after"):
        if getattr(args, field):
            payload[field] = getattr(args, field)
    if args.sender:
        payload["from"] = args.sender
    if args.media_url:
        payload["media_urls"] = args.media_url
    status, data = post_json(_api_base(args) + "/broadcasts", payload, headers)
    if status == 202 and isinstance(data, dict):
        # The summary for a person on stderr; the JSON stays on stdout for scripts.
        rejected = data.get("rejected") or []
        summary = f"broadcast {data['id']}: {data['count']} recipients, {len(rejected)} rejected"
        print(summary, file=sys.stderr)
        for reason in sorted({r["reason"] for r in rejected}):
            count = sum(r["reason"] == reason for r in rejected)
            print(f"  {reason}: {count}", file=sys.stderr)
        if args.watch:
            _print_result(status, data)
            return _follow(args, f"{_api_base(args)}/broadcasts/{data['id']}", data["count"])
    return _print_result(status, data)


def progress(done: int, total: int, width: int = 30) -> str:
    """A text progress bar: [#####.....] 5/10."""
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _follow(args: argparse.Namespace, url: str, total: int) -> int:
    """Redraw a progress bar of the broadcast's messages that have left until none is pending."""
    from devkit.cli import _print_result, post_json

    tty = sys.stderr.isatty()
    shown = ""
    while True:
        status, data = post_json(url, None, method="GET")
        if status != 200 or not isinstance(data, dict):
            return _print_result(status, data)
        counts = data.get("counts") or {}
        pending = sum(counts.get(s, 0) for s in ("scheduled", "queued", "sending"))
        bar = progress(total - pending, total)
        if bar != shown:
            print(("\r" if tty else "") + bar, end="" if tty else "\n", file=sys.stderr, flush=True)
            shown = bar
        if not pending:
            if tty:
                print(file=sys.stderr)
            print(json.dumps(counts), flush=True)
            return 0
        time.sleep(1)


def add_parser(commands: Any) -> None:
    """The `broadcast` command."""
    broadcast = commands.add_parser("broadcast", help="send one body to many numbers")
    broadcast.add_argument(
        "--to", required=True, help="comma-separated numbers, @file.txt, or file.csv"
    )
    broadcast.add_argument(
        "--column", help="the CSV's phone column (default: a header named phone/to/number)"
    )
    broadcast.add_argument("--body", required=True)
    broadcast.add_argument("--from", dest="sender")
    broadcast.add_argument("--media-url", action="append")
    broadcast.add_argument("--send-at", help="ISO-8601 time")
    broadcast.add_argument("--timezone", help="IANA zone for a --send-at without offset")
    broadcast.add_argument("--not-before", help="quiet hours end, HH:MM local")
    broadcast.add_argument("--not-after", help="quiet hours start, HH:MM local")
    broadcast.add_argument("--idempotency-key")
    broadcast.add_argument("--watch", action="store_true", help="a progress bar until it is out")
    broadcast.add_argument("--api", help="API base URL (default: the local stack)")
    broadcast.set_defaults(func=cmd_broadcast)
