"""Deployment settings read from environment variables, declared once with defaults and meaning."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

# Required. SSM parameter path holding this stage's secrets and settings, e.g. /switchboard/dev.
SSM_PATH = "SWITCHBOARD_SSM_PATH"
# Optional. External base URL Twilio calls (custom domain or execute-api URL with its stage).
# Signatures are checked against it as well as the URL the event describes, and the app's own
# absolute URLs (callbacks, the default call URL) are built from it.
PUBLIC_URL = "SWITCHBOARD_PUBLIC_URL"
# Optional. Replaces https://api.twilio.com for REST calls (the local stack's fake Twilio API).
TWILIO_API_BASE_URL = "TWILIO_API_BASE_URL"
# Optional, seconds. How long fetched parameters are cached in a warm container.
SECRETS_TTL = "SWITCHBOARD_SECRETS_TTL"
# Optional, seconds. How long the last good parameters keep serving when a refresh fails.
SECRETS_MAX_STALE = "SWITCHBOARD_SECRETS_MAX_STALE"

# Messaging (optional until a route or handler needs them; then missing is an error naming them).
# DynamoDB table holding messages, calls, inbound messages, opt-outs and idempotency keys.
TABLE = "SWITCHBOARD_TABLE"
# Name (not URL) of the standard SQS send queue; its dead-letter queue is "<name>-dlq".
QUEUE = "SWITCHBOARD_QUEUE"
# Days before messages, calls and inbound records expire by DynamoDB TTL (opt-outs never do).
RETENTION_DAYS = "SWITCHBOARD_RETENTION_DAYS"
# Messages per second across all queue workers; fractional rates allowed (0.5 = one per 2 s).
SEND_RATE = "SWITCHBOARD_SEND_RATE"
# Twilio attempts per message before it is failed.
SEND_MAX_ATTEMPTS = "SWITCHBOARD_SEND_MAX_ATTEMPTS"

# The softphone page (chalicelib/browser/page.py reads them): the user pool's app client, set by
# the template, and Cognito's API endpoint when it is not the region's (the local stack's moto).
USER_POOL_CLIENT_ID = "SWITCHBOARD_USER_POOL_CLIENT_ID"
COGNITO_URL = "SWITCHBOARD_COGNITO_URL"

DEFAULT_SECRETS_TTL = 300.0
DEFAULT_SECRETS_MAX_STALE = 3600.0
DEFAULT_RETENTION_DAYS = 90.0
DEFAULT_SEND_RATE = 1.0  # a US long code's rate
DEFAULT_SEND_MAX_ATTEMPTS = 5


class SettingError(Exception):
    """A required environment setting is missing or malformed."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name


# A NamedTuple rather than a dataclass: importing dataclasses costs ~5 ms at cold start.
class Settings(NamedTuple):
    """The deployment's environment settings, resolved."""

    ssm_path: str
    public_url: str | None
    twilio_api_base_url: str | None
    secrets_ttl: float
    secrets_max_stale: float
    table: str | None = None
    queue: str | None = None
    retention_days: float = DEFAULT_RETENTION_DAYS
    send_rate: float = DEFAULT_SEND_RATE
    send_max_attempts: int = DEFAULT_SEND_MAX_ATTEMPTS

    def require_table(self) -> str:
        """The table name.

        Raises:
            SettingError: SWITCHBOARD_TABLE is not set.
        """
        if not self.table:
            raise SettingError(TABLE, "must be set to the DynamoDB table name")
        return self.table

    def require_queue(self) -> str:
        """The send queue's name.

        Raises:
            SettingError: SWITCHBOARD_QUEUE is not set.
        """
        if not self.queue:
            raise SettingError(QUEUE, "must be set to the SQS send queue's name")
        return self.queue


_loaded: Settings | None = None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from the environment (os.environ's are resolved once per container).

    A Lambda container's environment never changes after it starts, and reading and parsing ten
    variables on every webhook costs more than the rest of the settings' use; tests that change
    the environment call reset().

    Raises:
        SettingError: a required setting is missing or a value is malformed.
    """
    global _loaded
    if environ is None and _loaded is not None:
        return _loaded
    resolved = _resolve(os.environ if environ is None else environ)
    if environ is None:
        _loaded = resolved
    return resolved


def reset() -> None:
    """Forget the resolved settings: the next load() reads the environment again (tests)."""
    global _loaded
    _loaded = None


def _resolve(env: Mapping[str, str]) -> Settings:
    ssm_path = env.get(SSM_PATH, "").strip().rstrip("/")
    if not ssm_path.startswith("/"):
        raise SettingError(SSM_PATH, "must be set to an absolute parameter path such as /x/dev")
    return Settings(
        ssm_path=ssm_path,
        public_url=_base_url(env, PUBLIC_URL),
        twilio_api_base_url=_base_url(env, TWILIO_API_BASE_URL),
        secrets_ttl=_seconds(env, SECRETS_TTL, DEFAULT_SECRETS_TTL),
        secrets_max_stale=_seconds(env, SECRETS_MAX_STALE, DEFAULT_SECRETS_MAX_STALE),
        table=env.get(TABLE, "").strip() or None,
        queue=env.get(QUEUE, "").strip() or None,
        retention_days=_seconds(env, RETENTION_DAYS, DEFAULT_RETENTION_DAYS),
        send_rate=_positive(env, SEND_RATE, DEFAULT_SEND_RATE),
        send_max_attempts=int(_positive(env, SEND_MAX_ATTEMPTS, DEFAULT_SEND_MAX_ATTEMPTS)),
    )


def _base_url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if not value.startswith(("https://", "http://")):
        raise SettingError(name, "must start with https:// or http://")
    # No trailing slash: routes are appended as "/voice".
    return value.rstrip("/")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, "must be a number") from None
    if value < 0 or value != value or value == float("inf"):
        raise SettingError(name, "must be a finite, non-negative number")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _seconds(env, name, default)
    if value <= 0:
        raise SettingError(name, "must be greater than zero")
    return value
