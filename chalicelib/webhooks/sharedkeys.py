"""The SharedKeys Twilio may sign webhooks with (its Webhooks API, public beta), by key id.

One SecureString parameter, ``twilio/webhook_signing_keys``, holds every key this deployment
accepts, one ``<keyId>=<secret>`` entry per line (or comma-separated): rotating a key is adding
the new entry, pointing Twilio's Webhook Setting at the new key, then removing the old entry;
both pass in between. A fixed name, not one parameter per key id: a request's key id (anyone
can send any) never becomes a parameter name, a lookup or a cache entry of its own.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from chalicelib.aws import parameters

if TYPE_CHECKING:
    from chalicelib.core.settings import Settings

logger = logging.getLogger(__name__)

SIGNING_KEYS = "twilio/webhook_signing_keys"


@functools.lru_cache(maxsize=4)  # a value is parsed (and its mistakes logged) once
def parse(value: str | None) -> dict[str, str]:
    """The keys in the parameter's value: {key id: secret}.

    Entries are split at their first "=" (a base64 secret may end in "="), spaces around them
    ignored; an entry without an id or a secret is skipped with a warning naming its position,
    never its text.
    """
    keys: dict[str, str] = {}
    entries = (value or "").replace(",", "\n").splitlines()
    for position, entry in enumerate(entries, start=1):
        if not entry.strip():
            continue
        key_id, _, secret = entry.partition("=")
        key_id, secret = key_id.strip(), secret.strip()
        if not key_id or not secret:
            logger.warning(
                "a webhook signing key entry is not <keyId>=<secret>; skipped",
                extra={"parameter": SIGNING_KEYS, "entry": position},
            )
            continue
        if key_id in keys:
            logger.warning(
                "a webhook signing key is listed twice; the last entry counts",
                extra={"parameter": SIGNING_KEYS, "signing_key": key_id},
            )
        keys[key_id] = secret
    return keys


def secret_for(
    key_id: str, values: parameters.Parameters, config: Settings, *, reread: bool = True
) -> str | None:
    """The secret of key_id, or None when this deployment does not know it.

    With reread, a key id that is not cached makes one forced read of the parameter straight
    from SSM (parameters.reread: at most once per ten seconds, an allowance of its own), so a
    key added a minute ago passes on its first request.

    Raises:
        ParameterStoreError: the store cannot be read and nothing is cached (on demand).
    """
    secret = parse(values.optional(SIGNING_KEYS)).get(key_id)
    if secret is not None or not reread:
        return secret
    fresh = parameters.reread(config, SIGNING_KEYS)
    secret = parse(fresh).get(key_id) if fresh is not None else None
    if secret is not None:
        logger.info("a webhook signing key was added; using it", extra={"signing_key": key_id})
    return secret
