"""The one gate every Twilio webhook passes: load secrets, verify the signature, then answer."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from chalicelib.aws import parameters
from chalicelib.core import logs, responses, settings
from chalicelib.core.errors import StorageError
from chalicelib.webhooks import sharedkeys
from chalicelib.webhooks.signature import (
    HMAC_SHA1,
    MISMATCH,
    SignatureError,
    Signed,
    TooLargeError,
    VerifiedRequest,
    precheck,
    verify,
)
from chalicelib.webhooks.urls import base_urls

if TYPE_CHECKING:
    from chalice.app import Request, Response

logger = logging.getLogger(__name__)

Answer = Callable[[VerifiedRequest, parameters.Parameters], "str | Response"]

UNAVAILABLE = "Service unavailable"
FORBIDDEN = "Forbidden: invalid Twilio signature"
TOO_LARGE = "Request too large for a Twilio webhook"
TOKEN = "twilio/auth_token"
SIGNING_KEYS = sharedkeys.SIGNING_KEYS
UNKNOWN_KEY = "unknown signing key"


def handle(request: Request, answer: Answer, *, fallback: bool = False) -> Response:
    """Verify a webhook and return answer's TwiML; fail closed on any doubt.

    With fallback, parameters cached earlier are used however old when the store is down.
    """
    event = request.to_original_event()
    try:
        # Before secrets are loaded or the body is decoded: a flood of junk costs next to nothing.
        signed = precheck(event, request.headers)
    except (TooLargeError, SignatureError) as exc:
        return _refused(exc, next(iter(base_urls(event, None)), None), None)
    try:
        config = settings.load()
        values = parameters.load(config, stale_ok=fallback)
        token = values.require(TOKEN)
    except _UNAVAILABLE as exc:
        return _unavailable(exc, "refused")
    try:
        if signed.key_id is None:
            verified = _verify(event, request, token, config)
        else:
            verified = _verify_shared(event, request, signed, token, values, config)
    except TooLargeError as exc:
        return _refused(exc, None, None)
    except SignatureError as exc:
        return _refused(exc, exc.url, event)
    except _UNAVAILABLE as exc:  # the signing keys, read on demand through the extension
        return _unavailable(exc, "refused")
    logs.bind(
        call_sid=verified.twilio_param("CallSid"),
        message_sid=verified.twilio_param("MessageSid"),
        # Which key signed: once the old one no longer shows up, its entry can go.
        signing_key=signed.key_id,
    )
    try:
        result = answer(verified, values)
    except _UNAVAILABLE as exc:
        return _unavailable(exc, "failed")
    return result if not isinstance(result, str) else responses.twiml(result)


# What makes a webhook answer 500: the deployment cannot serve it right now.
_UNAVAILABLE = (
    settings.SettingError,
    parameters.ParameterStoreError,
    parameters.MissingParameterError,
    StorageError,
)


def _unavailable(exc: Exception, when: str) -> Response:
    """500 in plain text, failing closed, with a log line that names what is wrong (never a
    value). Failing visibly (Twilio's debugger shows 11200) beats answering as if all is well."""
    if isinstance(exc, settings.SettingError):
        logger.error(f"webhook {when}: setting unusable", extra={"setting": exc.name})
    elif isinstance(exc, parameters.MissingParameterError):
        message = f"webhook {when}: required parameter missing"
        logger.error(message, extra={"parameter": exc.name})
    elif isinstance(exc, parameters.ParameterStoreError):
        logger.error(f"webhook {when}: parameter store unreachable and nothing cached")
    else:
        logger.error(f"webhook {when}: storage unavailable")
    return responses.plain(500, UNAVAILABLE)


def _refused(exc: TooLargeError | SignatureError, url: str | None, event: dict | None) -> Response:
    """413 for what is larger than any webhook, 403 for a bad signature; logged either way.

    The log names the URL without its query and the parameters without their values: a
    twimlet's query holds a conference Password, a voicemail Email or echo's TwiML. The body's
    names are read only once the precheck has bounded it (event given).
    """
    if isinstance(exc, TooLargeError):
        logger.warning("webhook refused: too large", extra={"reason": str(exc)})
        return responses.plain(413, TOO_LARGE)
    address, _, query = (url or "").partition("?")
    names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    if event is not None:
        names.update(name for name, _ in parse_qsl(_body(event), keep_blank_values=True))
    extra = {"reason": exc.reason, "url": address or None, "parameters": sorted(names)[:_NAMES]}
    extra.update(exc.extra)
    logger.warning("webhook signature rejected", extra=extra)
    return responses.plain(403, FORBIDDEN)


_NAMES = 64  # a webhook has a few dozen fields; more names say nothing more


def _body(event: dict) -> str:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return ""
    return body


def _verify(
    event: dict,
    request: Request,
    token: str,
    config: settings.Settings,
    key_secret: str | None = None,
) -> VerifiedRequest:
    """verify() with the cached token, then, on a mismatch, with the token read afresh.

    Twilio signs with a rotated token at once, while this container and the extension may hold
    the old one for minutes; parameters.reread allows one forced read per ten seconds, so a
    flood of forged signatures costs SSM next to nothing. key_secret, a SharedKey's secret, is
    accepted beside the token.
    """
    secrets = token if key_secret is None else (key_secret, token)
    try:
        return verify(event, request.headers, request.raw_body, secrets, config.public_url)
    except SignatureError as exc:
        if exc.reason != MISMATCH:
            raise
        fresh = parameters.reread(config, TOKEN)
        if fresh is None or fresh == token:
            raise
        logger.info("auth token changed in the parameter store; using the new one")
        secrets = fresh if key_secret is None else (key_secret, fresh)
        return verify(event, request.headers, request.raw_body, secrets, config.public_url)


def _verify_shared(
    event: dict,
    request: Request,
    signed: Signed,
    token: str,
    values: parameters.Parameters,
    config: settings.Settings,
) -> VerifiedRequest:
    """verify() for a request whose settings header names a SharedKey.

    HMAC-SHA256 takes that key's secret alone (an unknown key: 403, after one forced read of
    the keys). HMAC-SHA1 under a key: twilio's libraries check it with the key's secret, this
    app with the auth token as well, since whoever holds the token can sign without the header.
    """
    key_id = signed.key_id or ""
    try:
        if signed.algorithm == HMAC_SHA1:
            secret = sharedkeys.secret_for(key_id, values, config, reread=False)
            return _verify(event, request, token, config, key_secret=secret)
        secret = sharedkeys.secret_for(key_id, values, config)
        if secret is None:
            url = next(iter(base_urls(event, config.public_url)), None)
            raise SignatureError(UNKNOWN_KEY, url)
        return verify(event, request.headers, request.raw_body, secret, config.public_url)
    except SignatureError as exc:
        exc.extra.setdefault("signing_key", key_id)
        raise
