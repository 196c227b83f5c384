"""What `make run` prints, and the log file behind it.

The app and the worker write one JSON object per log line (as in CloudWatch). Here every line
goes to .local/app.log, which `python -m devkit logs` reads, and the terminal gets what a person
watches for: one short line per request (method, route, status, time), errors, and, from the
local Twilio, one line per message or call it accepts.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import IO, Any

LOG_FILE = Path(__file__).resolve().parents[1] / ".local" / "app.log"
# chalice local's own access log; ours (the JSON "request handled" line) says more.
_CHALICE_ACCESS = re.compile(r'^\S+ - - \[.*\] "')


def summary(line: str) -> str | None:
    """The terminal's line for one line of a process's output, or None for nothing."""
    text = line.rstrip("\n")
    if not text.strip() or _CHALICE_ACCESS.match(text):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return text  # not ours: a traceback or a tool's own message, shown as it is
    if not isinstance(record, dict):
        return text
    if record.get("message") == "request handled":
        latency = record.get("latency_ms")
        took = f" {latency:.0f} ms" if isinstance(latency, int | float) else ""
        return f"{record.get('method', '')} {record.get('route', '')} {record.get('status')}{took}"
    if record.get("level") in ("ERROR", "CRITICAL"):
        # The fields that say why (a job's kind, its error or exception type, a parameter).
        why = [
            f"{key}={record[key]}"
            for key in ("kind", "error", "exception", "parameter", "reason", "setting")
            if record.get(key)
        ]
        return f"error: {record.get('message')}" + (f" ({', '.join(why)})" if why else "")
    return None


def pump(stream: IO[str], log: IO[str], out: IO[str] = sys.stdout) -> threading.Thread:
    """Copy a process's output to the log file, and its summary to the terminal, in a thread."""
    lock = threading.Lock()

    def run() -> None:
        for line in stream:
            with lock:
                log.write(line if line.endswith("\n") else line + "\n")
                log.flush()
            shown = summary(line)
            if shown is not None:
                print(shown, file=out, flush=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def accepted(kind: str, record: dict[str, Any], out: IO[str] = sys.stdout) -> None:
    """The local Twilio accepted a message or a call: one line a person can read."""
    if kind == "Messages":
        body = (record.get("body") or "").replace("\n", " ")
        body = body if len(body) <= 60 else body[:57] + "..."
        sender = record.get("from") or record.get("messaging_service_sid")
        print(f"twilio: SMS {sender} -> {record.get('to')}: {body}", file=out, flush=True)
    else:
        print(f"twilio: call {record.get('from')} -> {record.get('to')}", file=out, flush=True)
