"""AWS JSON-protocol calls (DynamoDB, SQS, SSM) without boto3: one SigV4-signed POST each.

Every storage, queue and parameter call is one POST of JSON. boto3 costs ~250 ms of CPU and
~33 MiB to import and build a DynamoDB client, and ~1.5 ms of CPU per call in serialisation,
validation, event hooks and HTTP layers; a webhook that stores one message pays all of it.
This is that POST and nothing else: SigV4 (as botocore computes it; the tests compare both and
a moto server that checks signatures), an HTTP/1.1 connection kept per thread, TLS verified
against certifi's bundle (as botocore does), timeouts, and retries like botocore's standard
mode for throttling, 5xx and broken connections.

Where it reads its configuration (the environment, as Lambda sets it): AWS_REGION or
AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL (the local stack); keys from
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or else botocore's own
credential chain (profiles, containers, instance roles), imported only then.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import threading
import time
from typing import Any

# Error codes botocore's standard retry mode retries, besides any 5xx answer.
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
# Backoff before retry n (from 1): random(0, 1) * min(_BASE_DELAY * 2**n, _MAX_DELAY) seconds.
# botocore's standard mode starts at up to 1 s; a webhook cannot wait that long, and DynamoDB's
# own SDK default starts at 25 ms.
_BASE_DELAY = 0.025
_MAX_DELAY = 1.0
# Raised before any request (status 0 too): configuration, which another attempt cannot mend.
_SETUP_CODES = frozenset({"NoCredentials", "NoRegion"})


class AwsError(Exception):
    """AWS refused a call, or could not be reached (status 0); code is AWS's error code."""

    def __init__(self, action: str, status: int, code: str, body: dict[str, Any] | None = None):
        super().__init__(f"{action} failed: {code}")
        self.action = action
        self.status = status
        self.code = code
        self.body = body or {}

    @property
    def retryable(self) -> bool:
        """Worth another attempt: throttled, a server error, or the connection failed."""
        if self.status == 0:
            return self.code not in _SETUP_CODES
        return self.status >= 500 or self.code in _RETRYABLE_CODES


class Credentials:
    """One set of keys (the session token only for temporary ones)."""

    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token


def credentials() -> Credentials:
    """The keys to sign with: Lambda's environment, or else botocore's credential chain.

    Raises:
        AwsError: no credentials anywhere (code NoCredentials).
    """
    environ = os.environ
    access_key = environ.get("AWS_ACCESS_KEY_ID")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        return Credentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)
    return _chain_credentials()


_chain: list[Any] = []


def _chain_credentials() -> Credentials:
    # Off Lambda (a laptop with a profile, a container role): botocore resolves and refreshes.
    if not _chain:
        import botocore.session

        _chain.append(botocore.session.get_session().get_credentials())
    found = _chain[0].get_frozen_credentials() if _chain[0] is not None else None
    if found is None or not found.access_key:
        raise AwsError("credentials", 0, "NoCredentials")
    return Credentials(found.access_key, found.secret_key, found.token)


def region() -> str:
    """The region calls go to (Lambda sets AWS_REGION).

    Raises:
        AwsError: none configured (code NoRegion).
    """
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        raise AwsError("region", 0, "NoRegion")
    return found


def endpoint(service: str, region_name: str) -> str:
    """The service's endpoint URL: the environment's override, or AWS's regional endpoint."""
    environ = os.environ
    override = environ.get("AWS_ENDPOINT_URL_" + service.upper()) or environ.get("AWS_ENDPOINT_URL")
    if override:
        return override.rstrip("/")
    suffix = "amazonaws.com.cn" if region_name.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region_name}.{suffix}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


_keys: dict[tuple[str, str, str, str], bytes] = {}


def signing_key(secret_key: str, day: str, region_name: str, service: str) -> bytes:
    """SigV4's derived key for one day, region and service (cached: it changes daily)."""
    cache_key = (secret_key, day, region_name, service)
    key = _keys.get(cache_key)
    if key is None:
        key = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
        for part in (region_name, service, "aws4_request"):
            key = _hmac(key, part)
        if len(_keys) > 16:
            _keys.clear()
        _keys[cache_key] = key
    return key


def sign(
    headers: dict[str, str],
    payload: bytes,
    *,
    creds: Credentials,
    region_name: str,
    service: str,
    amz_date: str,
) -> str:
    """The Authorization header for a POST to / (no query) whose headers are all signed.

    headers must hold host and x-amz-date (and x-amz-security-token with temporary keys), in
    lower case.
    """
    names = sorted(headers)
    canonical = "\n".join(
        (
            "POST",
            "/",
            "",
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names),
            ";".join(names),
            hashlib.sha256(payload).hexdigest(),
        )
    )
    day = amz_date[:8]
    scope = f"{day}/{region_name}/{service}/aws4_request"
    to_sign = "\n".join(
        ("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = signing_key(creds.secret_key, day, region_name, service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )


class _Unreachable(Exception):
    """The connection failed; fresh tells whether it was a new connection (else: reused)."""

    def __init__(self, reason: str, *, fresh: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fresh = fresh


class _Connection:
    """One HTTP/1.1 connection to an endpoint, kept open between calls.

    A raw socket rather than http.client: http.client parses every answer's headers through
    the email package (~12 ms to import, ~40 µs per answer), and AWS's JSON answers are a status
    line, a few headers and a Content-Length body.
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float) -> None:
        self.url = url
        scheme, _, rest = url.partition("://")
        hostport = rest.split("/", 1)[0]
        self.tls = scheme == "https"
        if hostport.startswith("["):  # IPv6: [::1]:5000
            end = hostport.index("]")
            host, port_text = hostport[1:end], hostport[end + 2 :]
        else:
            host, _, port_text = hostport.partition(":")
        default_port = 443 if self.tls else 80
        self.host = host
        self.port = int(port_text) if port_text else default_port
        # SigV4 signs Host as sent: without the port when it is the scheme's default.
        if port_text and self.port == default_port:
            hostport = hostport[: -len(port_text) - 1]
        self.host_header = hostport
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._sock: Any = None
        self._file: Any = None

    def close(self) -> None:
        for part in (self._file, self._sock):
            if part is not None:
                with contextlib.suppress(OSError):
                    part.close()
        self._sock = self._file = None

    def _open(self) -> None:
        import socket

        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                sock = _tls_context().wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self.read_timeout)
        except OSError as exc:
            raise _Unreachable(type(exc).__name__, fresh=True) from exc
        self._sock = sock
        self._file = sock.makefile("rb")

    def exchange(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one request; returns (status, headers in lower case, body)."""
        fresh = self._sock is None
        if fresh:
            self._open()
        try:
            self._sock.sendall(head + body)
            status_line = self._file.readline(65537)
            if not status_line:
                raise _Unreachable("closed by the server", fresh=fresh)
            version, _, rest = status_line.partition(b" ")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            while True:
                line = self._file.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            answer = self._read_body(headers)
        except _Unreachable:
            self.close()
            raise
        except (OSError, ValueError) as exc:
            self.close()
            raise _Unreachable(type(exc).__name__, fresh=fresh) from exc
        if version != b"HTTP/1.1" or headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, answer

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self._file.readline(65537).split(b";", 1)[0], 16)
                if size == 0:
                    while self._file.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self._read_exact(size))
                self._file.readline(65537)
        length = headers.get("content-length")
        if length is None:
            # No length: the body runs to the end of the connection.
            data = self._file.read()
            self.close()
            return data
        return self._read_exact(int(length))

    def _read_exact(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise ValueError("answer cut short")
        return data


_tls: list[Any] = []


def _tls_context() -> Any:
    if not _tls:
        import ssl

        try:
            import certifi

            cafile: str | None = certifi.where()
        except ImportError:
            cafile = None
        _tls.append(ssl.create_default_context(cafile=cafile))
    return _tls[0]


class Service:
    """One AWS service spoken in its JSON protocol: Service("dynamodb", "DynamoDB_20120810")."""

    def __init__(
        self,
        name: str,
        target_prefix: str,
        *,
        json_version: str = "1.0",
        connect_timeout: float = 1.0,
        read_timeout: float = 3.0,
        attempts: int = 3,
    ) -> None:
        self.name = name
        self.target_prefix = target_prefix
        self.content_type = f"application/x-amz-json-{json_version}"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.attempts = attempts
        self._local = threading.local()  # the worker calls from several threads at once

    def _connection(self, url: str) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.url != url:
            if conn is not None:
                conn.close()
            conn = self._local.conn = _Connection(url, self.connect_timeout, self.read_timeout)
        return conn

    def close(self) -> None:
        """Close this thread's connection (the next call opens another)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def call(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        """Call action with request (the API's own JSON shape); returns the answer's JSON.

        Raises:
            AwsError: AWS refused (its code), or every attempt failed (the last failure).
        """
        payload = json.dumps(request, separators=(",", ":")).encode("utf-8")
        attempt = 1
        while True:
            try:
                return self._attempt(action, payload)
            except AwsError as exc:
                if not exc.retryable or attempt >= self.attempts:
                    raise
            time.sleep(random.random() * min(_BASE_DELAY * 2**attempt, _MAX_DELAY))
            attempt += 1

    def _attempt(self, action: str, payload: bytes) -> dict[str, Any]:
        region_name = region()
        url = endpoint(self.name, region_name)
        conn = self._connection(url)
        creds = credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        headers = {
            "content-type": self.content_type,
            "host": conn.host_header,
            "x-amz-date": amz_date,
            "x-amz-target": f"{self.target_prefix}.{action}",
        }
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        authorization = sign(
            headers,
            payload,
            creds=creds,
            region_name=region_name,
            service=self.name,
            amz_date=amz_date,
        )
        head = "".join(
            (
                "POST / HTTP/1.1\r\n",
                "".join(f"{name}: {value}\r\n" for name, value in headers.items()),
                f"authorization: {authorization}\r\n",
                f"content-length: {len(payload)}\r\n",
                "accept-encoding: identity\r\n",
                "user-agent: switchboard\r\n\r\n",
            )
        ).encode("utf-8")
        for tries_left in (1, 0):
            try:
                status, answer_headers, body = conn.exchange(head, payload)
                break
            except _Unreachable as exc:
                # A kept connection the server had already closed: send again on a new one
                # (nothing reached the server). A new connection failing is a real failure.
                if exc.fresh or not tries_left:
                    raise AwsError(action, 0, f"Unreachable ({exc.reason})") from exc
        return self._answer(action, status, answer_headers, body)

    def _answer(
        self, action: str, status: int, headers: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        crc = headers.get("x-amz-crc32")
        if crc is not None:
            import zlib

            if str(zlib.crc32(body)) != crc:
                raise AwsError(action, 0, "CRC32 mismatch")  # corrupted on the way: retried
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = None
        if 200 <= status < 300 and isinstance(answer, dict):
            return answer
        if not isinstance(answer, dict):
            # Not JSON: a proxy's page, or an XML error (as moto gives for a bad signature).
            code = body.partition(b"<Code>")[2].partition(b"</Code>")[0].decode("utf-8", "replace")
            raise AwsError(action, status if status >= 300 else 500, code or f"HTTP {status}")
        # SQS's JSON protocol names the code it used to give in x-amzn-query-error, as boto3.
        code = headers.get("x-amzn-query-error", "").split(";", 1)[0]
        if not code:
            raw = answer.get("__type") or answer.get("code") or answer.get("Code") or ""
            code = str(raw).rsplit("#", 1)[-1] or f"HTTP {status}"
        raise AwsError(action, status, code, answer)


_services: dict[tuple[Any, ...], Service] = {}
_services_lock = threading.Lock()


def service(name: str, target_prefix: str, **options: Any) -> Service:
    """This container's Service for name with these options, made on first use."""
    key = (name, target_prefix, *sorted(options.items()))
    found = _services.get(key)
    if found is None:
        with _services_lock:  # the worker's threads may ask at once: one Service, not several
            found = _services.setdefault(key, Service(name, target_prefix, **options))
    return found


def reset() -> None:
    """Close and forget every Service, so the next call reads the environment again (tests)."""
    with _services_lock:
        for found in _services.values():
            found.close()
        _services.clear()
