"""Secrets and settings from SSM Parameter Store: one walk of the path, cached with a TTL."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalicelib.aws import clients

if TYPE_CHECKING:
    from chalicelib.core.settings import Settings

logger = logging.getLogger(__name__)

# The extension's answer is local; it waits on SSM itself (well under Twilio's 15 s).
_READ_TIMEOUT = 2.0
# The extension's answers that say it, not the parameter, failed: a wrong or missing session
# token (401/403) and throttling (429).
_EXTENSION_FAILURES = frozenset({401, 403, 429})
# A forced read straight from SSM (a signature that fails against the cached token may mean
# the token was rotated) happens at most this often, so forged requests cannot hammer SSM.
FORCED_READ_INTERVAL = 10.0
# After a failed refresh, serve what is cached and try again no sooner than this, so that an
# outage does not make every webhook wait for the parameter store's timeouts.
_RETRY_AFTER_FAILURE = 30.0

Fetcher = Callable[[str], dict[str, str]]
# Set by the AWS Parameters and Secrets Lambda Extension's layer configuration.
EXTENSION_PORT = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"


class ParameterStoreError(Exception):
    """The parameter store could not be read and nothing usable is cached."""


class MissingParameterError(Exception):
    """A required parameter is not set under the stage's path."""

    def __init__(self, name: str) -> None:
        super().__init__(f"parameter {name} is not set")
        self.name = name


class Parameters(Mapping[str, str]):
    """Parameter values by name relative to the stage path (``twilio/auth_token``)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        # Names only: values are secrets.
        return f"{type(self).__name__}({sorted(self._values)})"

    def _value(self, name: str) -> str | None:
        return self._values.get(name)

    def require(self, name: str) -> str:
        """Return a non-empty parameter.

        Raises:
            MissingParameterError: it is not set or blank.
            ParameterStoreError: (fetched on demand) the store cannot be read.
        """
        value = self._value(name) or ""
        if not value.strip():
            raise MissingParameterError(name)
        return value

    def optional(self, name: str) -> str | None:
        """Return a parameter's value, or None when it is not set or blank.

        Raises:
            ParameterStoreError: (fetched on demand) the store cannot be read.
        """
        value = self._value(name) or ""
        return value if value.strip() else None


class OnDemandParameters(Parameters):
    """Parameters read one name at a time when first asked for, each cached for the TTL.

    The Lambda extension has no by-path call, and a webhook needs two or three names, not the
    whole path: reading on demand keeps a cold start to the requests it needs.
    """

    def __init__(self, read: Callable[[str], str | None]) -> None:
        super().__init__({})
        self._read = read

    def _value(self, name: str) -> str | None:
        if name not in self._values:
            value = self._read(name)
            if value is None:
                return None
            self._values[name] = value
        return self._values[name]


class ParameterCache:
    """Caches each path's parameters for a TTL, serving stale values when a refresh fails."""

    def __init__(self, fetch: Fetcher, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        # path -> (parameters, fetched_at, next_refresh_at)
        self._entries: dict[str, tuple[Parameters, float, float]] = {}

    def get(self, path: str, *, ttl: float, max_stale: float) -> Parameters:
        """Return the path's parameters, fetching them when the cached copy is older than ttl.

        Raises:
            ParameterStoreError: the fetch failed and no copy younger than ttl + max_stale exists.
        """
        with self._lock:
            now = self._clock()
            entry = self._entries.get(path)
            if entry and now < entry[2]:
                return entry[0]
            try:
                fresh = Parameters(self._fetch(path))
            except ParameterStoreError:
                if entry and now - entry[1] < ttl + max_stale:
                    logger.warning(
                        "parameter refresh failed; serving cached values",
                        extra={"path": path, "age_s": round(now - entry[1], 1)},
                    )
                    self._entries[path] = (entry[0], entry[1], now + min(ttl, _RETRY_AFTER_FAILURE))
                    return entry[0]
                raise
            self._entries[path] = (fresh, now, now + ttl)
            return fresh

    def replace(self, path: str, values: Mapping[str, str], *, ttl: float) -> None:
        """Cache values for path as if just fetched."""
        with self._lock:
            now = self._clock()
            self._entries[path] = (Parameters(values), now, now + ttl)

    def last_known(self, path: str) -> Parameters | None:
        """Return the last values fetched for path, however old, or None."""
        with self._lock:
            entry = self._entries.get(path)
            return entry[0] if entry else None

    def clear(self) -> None:
        """Forget every cached value (tests, and after rotation by hand)."""
        with self._lock:
            self._entries.clear()


def fetch_by_path(path: str, client: Any = None) -> dict[str, str]:
    """Read every parameter under path (recursive, decrypted, all pages) in one walk.

    Raises:
        ParameterStoreError: SSM could not be reached or refused the request.
    """
    ssm = client or clients.client("ssm")
    prefix = path.rstrip("/") + "/"
    values: dict[str, str] = {}
    with _read_errors(path):
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=path, Recursive=True, WithDecryption=True
        )
        for page in pages:
            for parameter in page.get("Parameters", []):
                name = parameter["Name"]
                values[name[len(prefix) :] if name.startswith(prefix) else name] = parameter[
                    "Value"
                ]
    return values


@contextlib.contextmanager
def _read_errors(what: str) -> Iterator[None]:
    """SSM's failures as ParameterStoreError, naming AWS's code only (never a value)."""
    # Only where AWS is called: /voice and the twimlets that write nothing load no botocore.
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise ParameterStoreError(f"cannot read {what}: {clients.failure(exc)}") from exc


def extension_port() -> int | None:
    """The AWS Parameters and Secrets Lambda Extension's port, when the layer is configured."""
    raw = os.environ.get(EXTENSION_PORT, "").strip()
    return int(raw) if raw.isdigit() else None


def fetch_via_extension(name: str, port: int | None = None) -> dict[str, str]:
    """Read one parameter (decrypted) through the extension: {name: value}, or {} when unset.

    A raw HTTP/1.0 request over a socket: http.client would add ~12 ms of imports to every
    cold start, and this is one GET to localhost.

    Raises:
        ParameterStoreError: the extension is unreachable or failed.
    """
    port = port or extension_port() or 2773
    query = "name=" + quote(name, safe="/") + "&withDecryption=true"
    request = (
        f"GET /systemsmanager/parameters/get?{query} HTTP/1.0\r\n"
        f"Host: localhost:{port}\r\n"
        f"X-Aws-Parameters-Secrets-Token: {os.environ.get('AWS_SESSION_TOKEN', '')}\r\n\r\n"
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=_READ_TIMEOUT) as conn:
            conn.sendall(request.encode("utf-8"))
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise ParameterStoreError(f"extension unreachable: {type(exc).__name__}") from exc
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ParameterStoreError("extension answered something that is not HTTP") from None
    if status == 200:
        try:
            return {name: json.loads(body)["Parameter"]["Value"]}
        except (ValueError, KeyError, TypeError):
            raise ParameterStoreError("extension answered unreadable JSON") from None
    # A name that is not set comes back as some 4xx whose body is not documented: any 4xx but
    # these means "no value". A required parameter then still fails closed (require()).
    if 400 <= status < 500 and status not in _EXTENSION_FAILURES:
        if name not in _reported_unset:
            # An optional parameter left unset is the normal case, not a warning: alarms on
            # WARNING must stay meaningful. Said once per name and container.
            _reported_unset.add(name)
            logger.info(
                "parameter not set (extension answered %s); its default applies",
                status,
                extra={"parameter": name},
            )
        return {}
    raise ParameterStoreError(f"extension answered HTTP {status}")


_reported_unset: set[str] = set()
_cache = ParameterCache(lambda path: fetch_by_path(path))
_named = ParameterCache(lambda name: fetch_via_extension(name))


def load(settings: Settings, *, stale_ok: bool = False) -> Parameters:
    """Return the stage's parameters, cached for the configured TTL.

    With the extension configured, names are read on demand through it (one GET to localhost);
    otherwise the whole path is read in one GetParametersByPath walk. With stale_ok, values
    cached earlier serve however old when the store cannot be read (the fallback webhook).

    Raises:
        ParameterStoreError: the store is unreachable and nothing usable is cached (with the
            extension: raised by require/optional, when a name is first read).
    """
    options = {"ttl": settings.secrets_ttl, "max_stale": settings.secrets_max_stale}
    if extension_port() is None:
        try:
            return _cache.get(settings.ssm_path, **options)
        except ParameterStoreError:
            cached = _cache.last_known(settings.ssm_path) if stale_ok else None
            if cached is None:
                raise
            logger.warning("parameter store unreachable; using values cached earlier")
            return cached
    prefix = settings.ssm_path + "/"

    def read(name: str) -> str | None:
        try:
            values = _named.get(prefix + name, **options)
        except ParameterStoreError:
            values = _named.last_known(prefix + name) if stale_ok else None
            if values is None:
                raise
            logger.warning("parameter store unreachable; using values cached earlier")
        return values.get(prefix + name)

    return OnDemandParameters(read)


class _Throttle:
    """Allows one event per interval (per container), on an injectable clock."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self.interval:
                return False
            self._last = now
            return True

    def clear(self) -> None:
        with self._lock:
            self._last = None


# One allowance per name: forged signatures naming unknown webhook signing keys must not keep
# a rotated auth token from being read, nor the reverse.
_forced: dict[str, _Throttle] = {}
_forced_lock = threading.Lock()
# The Twilio credentials' forced read has its own allowance: a flood of forged webhook
# signatures must not keep a rotated API secret from being read. Its lock makes the threads of
# a batch that were refused together wait for the one read and then use what it found.
_forced_credentials = _Throttle(FORCED_READ_INTERVAL)
_credentials_lock = threading.Lock()


def fetch_one(name: str, client: Any = None) -> str | None:
    """Read one parameter (decrypted) straight from SSM, past every cache; None when unset.

    Raises:
        ParameterStoreError: SSM could not be reached or refused the request.
    """
    ssm = client or clients.client("ssm")
    with _read_errors(name):
        try:
            return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return None


def fetch_many(names: list[str], client: Any = None) -> dict[str, str]:
    """Read names (decrypted) straight from SSM, past every cache, in one GetParameters (up to
    ten); names that are not set are absent from the answer.

    Raises:
        ParameterStoreError: SSM could not be reached or refused the request.
    """
    ssm = client or clients.client("ssm")
    with _read_errors("parameters by name"):
        answer = ssm.get_parameters(Names=names, WithDecryption=True)
    return {parameter["Name"]: parameter["Value"] for parameter in answer.get("Parameters", [])}


def reread_all(settings: Settings, names: tuple[str, ...]) -> bool:
    """Read names straight from SSM into this container's cache, past the extension's, at most
    once per FORCED_READ_INTERVAL; True when read. A name no longer set is forgotten.

    For credentials the owner may have just rotated (Twilio refuses the old ones at once).
    """
    with _credentials_lock:
        if not _forced_credentials.allow():
            return False
        prefix = settings.ssm_path + "/"
        try:
            found = fetch_many([prefix + name for name in names])
        except ParameterStoreError as exc:
            logger.warning("forced parameter read failed", extra={"error": str(exc)})
            return False
        _remember(settings, {name: found.get(prefix + name) for name in names})
        return True


def _remember(settings: Settings, values: dict[str, str | None]) -> None:
    """Cache values read past the caches as if just fetched (None: the name is not set)."""
    if extension_port() is None:
        current = _cache.last_known(settings.ssm_path)
        if current is not None:  # else the next load walks the whole path anyway
            merged = {k: v for k, v in {**current, **values}.items() if v is not None}
            _cache.replace(settings.ssm_path, merged, ttl=settings.secrets_ttl)
        return
    for name, value in values.items():
        full = f"{settings.ssm_path}/{name}"
        _named.replace(full, {full: value} if value is not None else {}, ttl=settings.secrets_ttl)


def reread(settings: Settings, name: str) -> str | None:
    """The parameter's current value read straight from SSM, bypassing this container's cache
    and the extension's, at most once per FORCED_READ_INTERVAL per name; None when not allowed
    yet, not set, or unreadable. A value read replaces the cached one.

    For a secret the owner may have just rotated (Twilio signs with a new auth token at once).
    """
    if not _allowance(name).allow():
        return None
    full = f"{settings.ssm_path}/{name}"
    try:
        value = fetch_one(full)
    except ParameterStoreError as exc:
        logger.warning("forced parameter read failed", extra={"parameter": name, "error": str(exc)})
        return None
    if value is None:
        return None
    _remember(settings, {name: value})
    return value


def _allowance(name: str) -> _Throttle:
    """The forced-read allowance of name (names are the code's, never a request's)."""
    with _forced_lock:
        return _forced.setdefault(name, _Throttle(FORCED_READ_INTERVAL))


def reset() -> None:
    """Drop the caches and the clients, so the next call reads the current environment."""
    _cache.clear()
    _named.clear()
    _forced.clear()
    _forced_credentials.clear()
    _reported_unset.clear()
    clients.reset()
