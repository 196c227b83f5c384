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

DEFAULT_SECRETS_TTL = 300.0
DEFAULT_SECRETS_MAX_STALE = 3600.0


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


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from the environment.

    Raises:
        SettingError: a required setting is missing or a value is malformed.
    """
    env = os.environ if environ is None else environ
    ssm_path = env.get(SSM_PATH, "").strip().rstrip("/")
    if not ssm_path.startswith("/"):
        raise SettingError(SSM_PATH, "must be set to an absolute parameter path such as /x/dev")
    return Settings(
        ssm_path=ssm_path,
        public_url=_base_url(env, PUBLIC_URL),
        twilio_api_base_url=_base_url(env, TWILIO_API_BASE_URL),
        secrets_ttl=_seconds(env, SECRETS_TTL, DEFAULT_SECRETS_TTL),
        secrets_max_stale=_seconds(env, SECRETS_MAX_STALE, DEFAULT_SECRETS_MAX_STALE),
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
        raise SettingError(name, "must be a number of seconds") from None
    if value < 0:
        raise SettingError(name, "must not be negative")
    return value
