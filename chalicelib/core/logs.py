"""JSON log lines on stdout for CloudWatch, with phone numbers masked and per-request context."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

# Loggers that get the JSON handler: our modules, and Chalice's app logger for its own errors.
_LOGGER_NAMES = ("chalicelib", "app", "switchboard")
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "switchboard_log_context", default=None
)
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# Identifiers whose digit runs are not phone numbers.
_UNMASKED = frozenset({"request_id", "api_request_id", "id", "job_id"})
# A plus as written, raw or URL-encoded once or more (%2B, %252B, ...), and the separators people
# and form encodings put between digit groups (space as + or %20, parentheses, dots, hyphens).
_PLUS = r"(?:\+|%(?:25)*2[Bb])"
_SEP = r"(?:[ ().+-]|%(?:25)*(?:20|28|29|2[Dd]))"
# International numbers, separated or not: the plus as written, then 7-15 digits.
_INTERNATIONAL = re.compile(rf"({_PLUS})(\d(?:{_SEP}{{0,3}}\d){{2,10}}{_SEP}{{0,3}}\d{{4}})(?!\d)")
# NANP numbers written for people: (415) 555-0100, 415.555.0100, 1-415-555-0100.
_NATIONAL = re.compile(r"(?<![\w%+*])(?:1[ .-])?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?!\d)")
# Bare digit runs, not digits inside SIDs or other words. The last four digits stay readable.
_PHONE = re.compile(rf"(?<![\w%])({_PLUS})?(\d{{3,11}})(\d{{4}})(?!\d)")


_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_BREAKS = re.compile("[\x85\u2028\u2029]")

# Every phone number holds a run of four digits; most logged strings have none, and the search
# is a quick way to skip both substitutions for them.
_FOUR_DIGITS = re.compile(r"\d{4}")


def mask_numbers(text: str) -> str:
    """Replace all but the last four digits of every phone number in text with '*'."""
    if not _FOUR_DIGITS.search(text):
        return text
    text = _INTERNATIONAL.sub(lambda m: m.group(1) + _stars(m.group(2)), text)
    text = _NATIONAL.sub(lambda m: _stars(m.group(0)), text)
    return _PHONE.sub(lambda m: (m.group(1) or "") + "*" * len(m.group(2)) + m.group(3), text)


def _stars(span: str) -> str:
    return "*" * (len(span) - 4) + span[-4:]


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_numbers(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, message, context and extra fields."""

    _second = -1
    _second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            # strftime once per second, not once per line.
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": self._timestamp(record),
            "level": record.levelname,
            "message": mask_numbers(record.getMessage()),
            "logger": record.name,
        }
        context = _CONTEXT.get()
        if context:
            line.update({k: v if k in _UNMASKED else _masked(v) for k, v in context.items()})
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS:
                line[key] = value if key in _UNMASKED else _masked(value)
        if record.exc_info:
            # The exception type only: tracebacks can carry request values.
            line["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        text = json.dumps(line, default=str, ensure_ascii=False)
        # JSON escapes C0 controls; these Unicode line breaks it leaves raw would split a line in
        # viewers that honour them (a caller's text could forge a log line there).
        return text.translate(_LINE_BREAKS) if _BREAKS.search(text) else text


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (Lambda ships it; pytest captures it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


LEVEL_VARIABLE = "SWITCHBOARD_LOG_LEVEL"  # set per stage by the template's LogLevel
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
_LEVELS["ERROR"] = logging.ERROR


def configure(level: int | None = None) -> None:
    """Attach the JSON handler to the app's loggers once; they stop propagating to root.

    The level is SWITCHBOARD_LOG_LEVEL's (DEBUG, INFO, WARNING or ERROR; INFO otherwise), so a
    stage's verbosity changes with its configuration, not its code.
    """
    if level is None:
        level = _LEVELS.get(os.environ.get(LEVEL_VARIABLE, "").strip().upper(), logging.INFO)
    for name in _LOGGER_NAMES:
        target = logging.getLogger(name)
        if not any(isinstance(h, _StdoutHandler) for h in target.handlers):
            handler = _StdoutHandler()
            handler.setFormatter(JsonFormatter())
            target.addHandler(handler)
        target.setLevel(level)
        # Lambda's runtime puts its own handler on root; propagating would print twice.
        target.propagate = False
    # twilio-python logs every request's URL and query (phone numbers) at INFO, as plain text;
    # botocore says where it found credentials and endpoints on every cold start.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # Fields the JSON lines never show: skipping them saves the stack walk that finds the
    # caller's file and line, and the thread/process lookups, on every record.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def bind(**fields: Any) -> None:
    """Add fields to every log line for the rest of this invocation."""
    current = _CONTEXT.get() or {}
    _CONTEXT.set({**current, **{k: v for k, v in fields.items() if v not in (None, "")}})


def start_invocation(**fields: Any) -> None:
    """Start a fresh log context for one invocation."""
    _CONTEXT.set({k: v for k, v in fields.items() if v not in (None, "")})


_access = logging.getLogger("chalicelib.access")


def http_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware: bind the request's context and log one access line with its outcome."""
    started = time.perf_counter()
    context = event.context or {}
    lambda_context = getattr(event, "lambda_context", None)
    route = context.get("resourcePath")
    name = (getattr(event, "uri_params", None) or {}).get("name")
    if route == "/twimlets/{name}" and name:
        route = "/twimlets/" + name[:40]  # which twimlet, not the template all share
    start_invocation(
        route=route,
        method=event.method,
        request_id=getattr(lambda_context, "aws_request_id", None) or context.get("requestId"),
    )
    response = get_response(event)
    status = response.status_code
    outcome = "ok" if status < 400 else "rejected" if status < 500 else "error"
    level = logging.ERROR if status >= 500 else logging.INFO
    _access.log(
        level,
        "request handled",
        extra={
            "status": status,
            "outcome": outcome,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            # API Gateway's id, which the caller sees as x-amzn-RequestId.
            "api_request_id": context.get("requestId"),
        },
    )
    return response


def event_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for schedule and queue events: a fresh log context per invocation."""
    context = getattr(event, "context", None)
    start_invocation(
        handler=type(event).__name__, request_id=getattr(context, "aws_request_id", None)
    )
    return get_response(event)
