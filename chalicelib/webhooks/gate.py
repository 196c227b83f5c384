"""The one gate every Twilio webhook passes: load secrets, verify the signature, then answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.aws import parameters
from chalicelib.core import logs, responses, settings
from chalicelib.core.errors import StorageError
from chalicelib.webhooks.signature import SignatureError, VerifiedRequest, verify

if TYPE_CHECKING:
    from chalice.app import Request, Response

logger = logging.getLogger(__name__)

Answer = Callable[[VerifiedRequest, parameters.Parameters], "str | Response"]

UNAVAILABLE = "Service unavailable"
FORBIDDEN = "Forbidden: invalid Twilio signature"


def handle(request: Request, answer: Answer, *, fallback: bool = False) -> Response:
    """Verify a webhook and return answer's TwiML; fail closed on any doubt.

    With fallback, parameters cached earlier are used however old when the store is down.
    """
    try:
        config = settings.load()
        values = parameters.load(config, stale_ok=fallback)
        token = values.require("twilio/auth_token")
    except settings.SettingError as exc:
        logger.error("webhook refused: setting unusable", extra={"setting": exc.name})
        return responses.plain(500, UNAVAILABLE)
    except parameters.ParameterStoreError:
        logger.error("webhook refused: parameter store unreachable and nothing cached")
        return responses.plain(500, UNAVAILABLE)
    except parameters.MissingParameterError as exc:
        logger.error("webhook refused: required parameter missing", extra={"parameter": exc.name})
        return responses.plain(500, UNAVAILABLE)
    try:
        verified = verify(
            request.to_original_event(),
            request.headers,
            request.raw_body,
            token,
            config.public_url,
        )
    except SignatureError as exc:
        logger.warning("webhook signature rejected", extra={"reason": exc.reason, "url": exc.url})
        return responses.plain(403, FORBIDDEN)
    logs.bind(
        call_sid=verified.twilio_param("CallSid"),
        message_sid=verified.twilio_param("MessageSid"),
    )
    try:
        result = answer(verified, values)
    except parameters.MissingParameterError as exc:
        logger.error("webhook failed: required parameter missing", extra={"parameter": exc.name})
        return responses.plain(500, UNAVAILABLE)
    except settings.SettingError as exc:
        logger.error("webhook failed: setting unusable", extra={"setting": exc.name})
        return responses.plain(500, UNAVAILABLE)
    except parameters.ParameterStoreError:
        logger.error("webhook failed: parameter store unreachable")
        return responses.plain(500, UNAVAILABLE)
    except StorageError:
        # Failing visibly (Twilio's debugger shows 11200) beats answering as if stored.
        logger.error("webhook failed: storage unavailable")
        return responses.plain(500, UNAVAILABLE)
    return result if not isinstance(result, str) else responses.twiml(result)
