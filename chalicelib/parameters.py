"""Secrets and settings from SSM Parameter Store: one walk of the path, cached with a TTL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.settings import Settings

logger = logging.getLogger(__name__)

# Well under Twilio's 15 s webhook limit: at most 2 attempts of 1 s connect + 2 s read.
_CONNECT_TIMEOUT = 1.0
_READ_TIMEOUT = 2.0
_MAX_ATTEMPTS = 2
# After a failed refresh, serve what is cached and try again no sooner than this, so that an
# outage does not make every webhook wait for the parameter store's timeouts.
_RETRY_AFTER_FAILURE = 30.0

Fetcher = Callable[[str], dict[str, str]]


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
        return f"Parameters({sorted(self._values)})"

    def require(self, name: str) -> str:
        """Return a non-empty parameter.

        Raises:
            MissingParameterError: it is not set or blank.
        """
        value = self._values.get(name, "")
        if not value.strip():
            raise MissingParameterError(name)
        return value

    def optional(self, name: str) -> str | None:
        """Return a parameter's value, or None when it is not set or blank."""
        value = self._values.get(name, "")
        return value if value.strip() else None


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

    def last_known(self, path: str) -> Parameters | None:
        """Return the last values fetched for path, however old, or None."""
        with self._lock:
            entry = self._entries.get(path)
            return entry[0] if entry else None

    def clear(self) -> None:
        """Forget every cached value (tests, and after rotation by hand)."""
        with self._lock:
            self._entries.clear()


_ssm_client: Any = None


def get_ssm_client() -> Any:
    """Return this container's SSM client, created on first use with short timeouts."""
    global _ssm_client
    if _ssm_client is None:
        # Imported here: boto3 costs ~150 ms of CPU, paid only by the container that needs it.
        import boto3
        from botocore.config import Config

        _ssm_client = boto3.client(
            "ssm",
            config=Config(
                connect_timeout=_CONNECT_TIMEOUT,
                read_timeout=_READ_TIMEOUT,
                retries={"total_max_attempts": _MAX_ATTEMPTS, "mode": "standard"},
            ),
        )
    return _ssm_client


def fetch_by_path(path: str, client: Any = None) -> dict[str, str]:
    """Read every parameter under path (recursive, decrypted, all pages) in one walk.

    Raises:
        ParameterStoreError: SSM could not be reached or refused the request.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    ssm = client or get_ssm_client()
    prefix = path.rstrip("/") + "/"
    values: dict[str, str] = {}
    try:
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=path, Recursive=True, WithDecryption=True
        )
        for page in pages:
            for parameter in page.get("Parameters", []):
                name = parameter["Name"]
                values[name[len(prefix) :] if name.startswith(prefix) else name] = parameter[
                    "Value"
                ]
    except (BotoCoreError, ClientError) as exc:
        # The exception names the failure class only; botocore messages never hold values.
        raise ParameterStoreError(f"cannot read {path}: {type(exc).__name__}") from exc
    return values


_cache = ParameterCache(lambda path: fetch_by_path(path))


def load(settings: Settings) -> Parameters:
    """Return the stage's parameters, cached for the configured TTL.

    Raises:
        ParameterStoreError: the store is unreachable and nothing usable is cached.
    """
    return _cache.get(
        settings.ssm_path, ttl=settings.secrets_ttl, max_stale=settings.secrets_max_stale
    )


def last_known(settings: Settings) -> Parameters | None:
    """Return the last parameters this container fetched, however old (fallback webhook)."""
    return _cache.last_known(settings.ssm_path)


def reset() -> None:
    """Drop the cache and the SSM client, so the next call fetches with the current environment."""
    global _ssm_client
    _cache.clear()
    _ssm_client = None
