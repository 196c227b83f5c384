"""The moto server's bad days: AWS calls that fail as the real services fail them.

A WSGI layer in front of moto (outside the lock that serialises moto, so a hanging request never
holds up others) picks a fault for some requests, named by operation (``"dynamodb:PutItem"``):

- "500": the service's internal error (HTTP 500), nothing applied;
- "throttle": the service's throttling error (DynamoDB ProvisionedThroughputExceededException,
  SSM ThrottlingException, SQS RequestThrottled, SES Throttling), nothing applied;
  "throttle-ThrottlingException" is DynamoDB's (and SQS's) other throttling code;
- "hang": no answer for ``hang_seconds``, then the connection is closed; nothing applied;
- "lost": moto applies the request, then the connection is closed without the answer, so the
  client's retry meets what the first attempt did (a conditional put fails its condition).

A seeded share (``rate``) of requests to chosen operations, or scripts (the next requests of one
operation, optionally only those whose body contains ``match``) get faults; scripts go first.
The control endpoint ``/_faults`` on the server's own URL serves tools in other processes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from devkit import aws_errors

FAULTS = ("500", "throttle", "throttle-ThrottlingException", "hang", "lost")
# What `operations=None` means: the calls the app makes.
OPERATIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
    "dynamodb:BatchGetItem",
    "dynamodb:TransactWriteItems",
    "sqs:SendMessage",
    "sqs:SendMessageBatch",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:ReceiveMessage",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ses:SendEmail",
    "ses:SendRawEmail",
)
# X-Amz-Target prefixes of the JSON-protocol services the layer knows.
_TARGETS = {"DynamoDB_20120810": "dynamodb", "AmazonSSM": "ssm", "AmazonSQS": "sqs"}
_SERVICES = ("dynamodb", "sqs", "ssm", "ses")
_LOCAL = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


class FaultError(ValueError):
    """A bad setting; ``field`` names the key it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@functools.cache
def _actions(service: str) -> frozenset[str]:
    import botocore.session

    return frozenset(botocore.session.get_session().get_service_model(service).operation_names)


def check_operation(operation: object, field: str = "operation") -> str:
    """The operation when it is "<service>:<Action>" of a service the layer knows.

    Raises:
        FaultError: anything else.
    """
    service, _, action = (
        str(operation).partition(":") if isinstance(operation, str) else ("", "", "")
    )
    if service not in _SERVICES or action not in _actions(service):
        raise FaultError(field, f"unknown operation {operation!r}, e.g. 'dynamodb:PutItem'")
    return f"{service}:{action}"


def _names(values: Iterable[str], field: str) -> tuple[str, ...]:
    if isinstance(values, str | bytes | dict):
        raise FaultError(field, "a list of names")
    try:
        return tuple(values)
    except TypeError:
        raise FaultError(field, "a list of names") from None


def _check_faults(faults: Iterable[str], field: str, *, allow_ok: bool) -> tuple[str, ...]:
    allowed = (*FAULTS, "ok") if allow_ok else FAULTS
    chosen = _names(faults, field)
    for fault in chosen:
        if fault not in allowed:
            raise FaultError(field, f"unknown fault {fault!r}: one of {', '.join(allowed)}")
    if not chosen:
        raise FaultError(field, "at least one fault")
    return chosen


class AwsFaults:
    """Which fault the next AWS request gets, and the log of those given; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.reset()

    def configure(
        self,
        *,
        rate: float = 0.0,
        faults: Iterable[str] = ("500", "throttle"),
        operations: Iterable[str] | None = None,
        seed: int | None = None,
        hang_seconds: float = 12.0,
        spare: Iterable[str] = (),
    ) -> None:
        """Give a seeded share `rate` of requests to `operations` one of `faults`; forget scripts.

        Requests signed with an access key in `spare` never get a fault: a test's harness standing
        in for AWS's own machinery (the SQS event source polls and deletes; the app does not).

        Raises:
            FaultError (a ValueError): a rate outside [0, 1], an unknown fault or operation, a
                negative hang_seconds.
        """
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise FaultError("rate", "a number from 0 to 1")
        chosen = _check_faults(faults, "faults", allow_ok=False)
        ops = OPERATIONS if operations is None else _names(operations, "operations")
        ops = tuple(check_operation(op, "operations") for op in ops)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultError("seed", "an integer or null")
        if (
            isinstance(hang_seconds, bool)
            or not isinstance(hang_seconds, int | float)
            or hang_seconds < 0
        ):
            raise FaultError("hang_seconds", "a number of seconds, 0 or more")
        if isinstance(spare, str) or not all(isinstance(key, str) for key in spare):
            raise FaultError("spare", "a list of access key ids")
        with self._lock:
            self._rate, self._faults, self._operations = float(rate), chosen, frozenset(ops)
            self._listed = ops
            self._seed, self._hang_seconds = seed, float(hang_seconds)
            self.spared = frozenset(spare)
            self._rng = random.Random(seed)
            self._scripts: list[tuple[str, str | None, deque[str]]] = []

    def script(self, operation: str, faults: Iterable[str], *, match: str | None = None) -> None:
        """The next requests of operation whose body contains match get faults, in order.

        "ok" lets one through. Scripts for several operations or matches may be pending.

        Raises:
            FaultError (a ValueError): an unknown operation or fault, or a match not a string.
        """
        name = check_operation(operation)
        steps = _check_faults(faults, "faults", allow_ok=True)
        if match is not None and not isinstance(match, str):
            raise FaultError("match", "a string or null")
        with self._lock:
            for op, text, pending in self._scripts:
                if op == name and text == match:
                    pending.extend(steps)
                    return
            self._scripts.append((name, match, deque(steps)))

    def reset(self) -> None:
        """Everything off, the log cleared; requests hanging now are let go (and dropped)."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()
        self.configure()
        with self._lock:
            self._injected: list[dict[str, Any]] = []

    @property
    def injected(self) -> list[dict[str, Any]]:
        """One entry per fault given: {"operation", "fault", "at"} (a copy)."""
        with self._lock:
            return [dict(entry) for entry in self._injected]

    def counts(self) -> dict[str, int]:
        """Faults given, by "operation fault"."""
        counted: dict[str, int] = {}
        for entry in self.injected:
            key = f"{entry['operation']} {entry['fault']}"
            counted[key] = counted.get(key, 0) + 1
        return counted

    def settings(self) -> dict[str, Any]:
        """The configuration and pending scripts as JSON-ready values."""
        with self._lock:
            return {
                "rate": self._rate,
                "faults": list(self._faults),
                "operations": list(self._listed),
                "seed": self._seed,
                "hang_seconds": self._hang_seconds,
                "spare": sorted(self.spared),
                "scripts": [
                    {"operation": op, "faults": list(steps), "match": match}
                    for op, match, steps in self._scripts
                ],
            }

    def active(self) -> bool:
        """Whether any request could get a fault now (else the layer passes all through)."""
        return bool(self._rate or self._scripts)

    def next(self, operation: str, body: bytes) -> str | None:
        """The fault for this request (logged as given), or None to pass it through."""
        with self._lock:
            for index, (op, match, steps) in enumerate(self._scripts):
                if op == operation and (match is None or match.encode() in body):
                    step = steps.popleft()
                    if not steps:
                        del self._scripts[index]
                    return None if step == "ok" else self._given(operation, step)
            if self._rate and operation in self._operations and self._rng.random() < self._rate:
                return self._given(operation, self._rng.choice(self._faults))
        return None

    def _given(self, operation: str, fault: str) -> str:
        self._injected.append({"operation": operation, "fault": fault, "at": time.time()})
        return fault

    def hold(self) -> None:
        """Wait as a hanging request does: hang_seconds, or until reset()."""
        release, seconds = self._release, self._hang_seconds
        release.wait(seconds)


def operation_of(environ: dict[str, Any], body: bytes) -> str | None:
    """The request's "<service>:<Action>", from X-Amz-Target or the query protocol's Action."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, action = target.partition(".")
        service = _TARGETS.get(prefix)
        return f"{service}:{action}" if service and action else None
    # Query protocol: the service is the SigV4 credential scope's (.../region/service/aws4_request).
    credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2]
    scope = credential.split(",", 1)[0].split("/")
    service = scope[3] if len(scope) == 5 else ""
    if service not in ("sqs", "ses"):
        return None
    form = body if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form") else b""
    params = parse_qs(form.decode("utf-8", "replace")) or parse_qs(environ.get("QUERY_STRING", ""))
    action = (params.get("Action") or [""])[0]
    return f"{service}:{action}" if action else None


def _access_key(environ: dict[str, Any]) -> str:
    """The access key a SigV4 request was signed with ("" when unsigned)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    _, found, rest = authorization.partition("Credential=")
    return rest.split("/", 1)[0] if found else ""


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for moto to read again."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = stream.read(int(length)) if length.isdigit() else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _drop(environ: dict[str, Any]) -> None:
    """Close the client's connection with no answer; werkzeug takes the raise as a dropped one."""
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        with contextlib.suppress(OSError):  # the client may have gone first
            connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionAbortedError("AWS fault layer: connection dropped on purpose")


WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class FaultLayer:
    """WSGI middleware: faults from `faults` in front of app, plus the /_faults control endpoint."""

    def __init__(self, app: WsgiApp, faults: AwsFaults) -> None:
        self.app = app
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        # S3 bucket names start with a letter or digit, so no path-style request starts "/_".
        if path == "/_faults" or path.startswith("/_faults/"):
            return control(self.faults, environ, start_response)
        if not self.faults.active():
            return self.app(environ, start_response)
        if self.faults.spared and _access_key(environ) in self.faults.spared:
            return self.app(environ, start_response)
        body = _read_body(environ)
        operation = operation_of(environ, body)
        fault = self.faults.next(operation, body) if operation else None
        if fault is None:
            return self.app(environ, start_response)
        if fault == "hang":
            self.faults.hold()
            _drop(environ)
        if fault == "lost":
            self.app(environ, lambda status, headers, exc_info=None: lambda data: None)
            _drop(environ)
        service = operation.split(":", 1)[0]  # type: ignore[union-attr]
        status, headers, payload = aws_errors.render(
            service, fault, json_protocol=bool(environ.get("HTTP_X_AMZ_TARGET"))
        )
        start_response(status, headers)
        return [payload]


_CONFIG_KEYS = ("rate", "faults", "operations", "seed", "hang_seconds", "spare")
_SCRIPT_KEYS = ("operation", "faults", "match")


def control(faults: AwsFaults, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """GET /_faults; POST /_faults/config, /_faults/script, /_faults/reset: local callers only."""
    status, payload = _control(faults, environ)
    body = json.dumps(payload).encode()
    reasons = {
        200: "OK",
        400: "Bad Request",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
    }
    start_response(
        f"{status} {reasons[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _control(faults: AwsFaults, environ: dict[str, Any]) -> tuple[int, Any]:
    if environ.get("REMOTE_ADDR") not in _LOCAL:
        return 403, {"error": "the fault controls answer callers on this machine only"}
    name = environ.get("PATH_INFO", "").removeprefix("/_faults").strip("/")
    method = environ.get("REQUEST_METHOD", "GET")
    if name not in ("", "config", "script", "reset"):
        return 404, {"error": f"no such control: /_faults/{name}"}
    if (method == "GET") != (name == ""):
        return 405, {
            "error": f"{'GET' if name == '' else 'POST'} /_faults{'/' + name if name else ''}"
        }
    if name == "":
        return 200, {**faults.settings(), "counts": faults.counts()}
    if name == "reset":
        faults.reset()
        return 200, faults.settings()
    try:
        payload = json.loads(_read_body(environ) or b"{}")
    except ValueError:
        return 400, {"error": "the body must be a JSON object", "field": None}
    if not isinstance(payload, dict):
        return 400, {"error": "the body must be a JSON object", "field": None}
    keys = _CONFIG_KEYS if name == "config" else _SCRIPT_KEYS
    for key in payload:
        if key not in keys:
            return 400, {"error": f"unknown key {key!r}: one of {', '.join(keys)}", "field": key}
    try:
        if name == "config":
            faults.configure(**payload)
        else:
            for key in ("operation", "faults"):
                if key not in payload:
                    return 400, {"error": f"{key} is required", "field": key}
            faults.script(payload["operation"], payload["faults"], match=payload.get("match"))
    except FaultError as exc:
        return 400, {"error": str(exc), "field": exc.field}
    return 200, faults.settings()
