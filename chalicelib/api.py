"""The gate for the IAM-authorised JSON API: parse, call the action, map errors to responses."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib import parameters, responses, settings
from chalicelib.twilio_rest import TwilioRequestError, TwilioTimeoutError, TwilioUnavailableError
from chalicelib.validation import ValidationError, json_object
from chalicelib.webhook_security import route_path

if TYPE_CHECKING:
    from chalice.app import Request, Response

logger = logging.getLogger(__name__)


class ApiContext:
    """What an action may need beyond its payload; parameters are read only when asked for."""

    def __init__(self, config: settings.Settings, base_url: str | None) -> None:
        self.settings = config
        self.base_url = base_url

    @functools.cached_property
    def parameters(self) -> parameters.Parameters:
        """The stage's parameters (raises ParameterStoreError when unreachable)."""
        return parameters.load(self.settings)


Action = Callable[[dict[str, Any], ApiContext], "tuple[int, dict[str, Any]]"]


def request_base_url(request: Request, public_url: str | None) -> str | None:
    """The app's external base URL: the public URL, else the request's own domain and stage."""
    if public_url:
        return public_url
    context = request.context or {}
    domain, path = context.get("domainName"), context.get("path") or ""
    route = route_path(context, request.uri_params)
    if not domain or not path.endswith(route):
        return None
    return f"https://{domain}{path[: len(path) - len(route)]}"


def handle(request: Request, action: Action) -> Response:
    """Run an API action and turn its outcome, or its domain error, into a JSON response."""
    try:
        payload = json_object(request.raw_body)
        config = settings.load()
        status, data = action(
            payload, ApiContext(config, request_base_url(request, config.public_url))
        )
    except ValidationError as exc:
        return responses.json_error(400, exc.message, field=exc.field)
    except TwilioRequestError as exc:
        return responses.json_error(exc.status or 400, exc.message, twilio_code=exc.code)
    except TwilioTimeoutError as exc:
        logger.error("Twilio timed out")
        return responses.json_error(504, exc.message)
    except TwilioUnavailableError as exc:
        logger.error("Twilio unavailable", extra={"twilio_code": exc.code, "status": exc.status})
        return responses.json_error(
            502, "Twilio could not handle the request", twilio_code=exc.code
        )
    except parameters.MissingParameterError as exc:
        logger.error("required parameter missing", extra={"parameter": exc.name})
        return responses.json_error(500, f"the deployment's parameter {exc.name} is not set")
    except parameters.ParameterStoreError:
        logger.error("parameter store unreachable")
        return responses.json_error(503, "the parameter store cannot be reached; try again")
    except settings.SettingError as exc:
        logger.error("setting unusable", extra={"setting": exc.name})
        return responses.json_error(500, f"the deployment's setting {exc.name} is unusable")
    return responses.json_response(status, data)
