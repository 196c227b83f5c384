"""The gate for the IAM-authorised JSON API: parse, run the action, map errors to responses."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.api import idempotency
from chalicelib.api.validation import ValidationError, json_object
from chalicelib.aws import parameters, storage
from chalicelib.core import responses, settings
from chalicelib.core.errors import (
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TryLaterError,
    UnavailableError,
)
from chalicelib.telephony.twilio_rest import (
    TwilioRequestError,
    TwilioTimeoutError,
    TwilioUnavailableError,
)
from chalicelib.webhooks.urls import route_path

if TYPE_CHECKING:
    from chalice.app import Request, Response

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "idempotency-key"


class ApiContext:
    """What an action may need beyond its payload; parameters and table are read when asked."""

    def __init__(
        self,
        config: settings.Settings,
        base_url: str | None,
        path: dict[str, str] | None = None,
        query: dict[str, list[str]] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> None:
        self.settings = config
        # A Cognito authorizer's claims (API Gateway checked the token); None on IAM routes.
        self.claims = claims
        self.base_url = base_url
        self.path = path or {}
        self.query = query or {}
        # The key and its claim's generation: one use of the key, across a retry after a crash.
        self.idempotency_scope: str | None = None
        self.idempotency_generation = ""
        # Set by an action once it wrote what a create may follow: from then on a failure
        # must not free the key (a retry would create again), only unlock it.
        self.committed = False

    @functools.cached_property
    def parameters(self) -> parameters.Parameters:
        """The stage's parameters (raises ParameterStoreError when unreachable)."""
        return parameters.load(self.settings)

    @functools.cached_property
    def table(self) -> storage.Table:
        """The app's table (raises SettingError when SWITCHBOARD_TABLE is unset)."""
        return storage.get_table(self.settings.require_table())

    def callback_url(self, route: str) -> str | None:
        """An absolute URL of this app's own route, for Twilio to call back."""
        return f"{self.base_url}{route}" if self.base_url else None


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


def handle(
    request: Request, action: Action, *, body: bool = True, idempotent: bool = False
) -> Response:
    """Run an API action and turn its outcome, or its domain error, into a JSON response."""
    key = None  # set once this request holds the Idempotency-Key's claim, never before
    ctx = None
    try:
        payload = json_object(request.raw_body) if body else {}
        config = settings.load()
        multi = (request.to_original_event() or {}).get("multiValueQueryStringParameters")
        ctx = ApiContext(
            config,
            request_base_url(request, config.public_url),
            request.uri_params,
            multi,
            ((request.context or {}).get("authorizer") or {}).get("claims"),
        )
        wanted = _idempotency_key(request) if idempotent else None
        if wanted is not None:
            digest = idempotency.fingerprint(route_path(request.context or {}, {}), payload)
            # A claim that fails leaves the key as it was: this request owns nothing to free.
            claimed = idempotency.claim(ctx.table, wanted, digest)
            if claimed.stored is not None:
                return responses.json_response(
                    claimed.stored.status, claimed.stored.body, {"Idempotent-Replayed": "true"}
                )
            key = wanted
            ctx.idempotency_scope = f"{key}#{claimed.generation}"
            ctx.idempotency_generation = claimed.generation
            ctx.committed = claimed.inherited
        status, data = action(payload, ctx)
        response = responses.json_response(status, data)
        keep = True
    except idempotency.KeyConflictError as exc:
        return responses.json_error(409, exc.message, field="Idempotency-Key")
    except Exception as exc:
        try:
            response, keep = _error_response(exc)
        except Exception:
            if key is not None and ctx is not None:
                _settle_key(ctx, key, None, keep=False)
            raise
    if key is not None and ctx is not None:
        _settle_key(ctx, key, response, keep=keep)
    return response


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    if not value or len(value) > idempotency.MAX_KEY_LENGTH or not value.isprintable():
        raise ValidationError(
            "Idempotency-Key must be 1 to 255 printable characters", "Idempotency-Key"
        )
    return value


def _settle_key(ctx: ApiContext, key: str, response: Response | None, *, keep: bool) -> None:
    try:
        generation = ctx.idempotency_generation
        if keep and response is not None:
            body = json.loads(response.body)
            idempotency.keep(ctx.table, key, generation, response.status_code, body)
        elif ctx.committed:
            idempotency.unlock(ctx.table, key, generation)
        else:
            idempotency.release(ctx.table, key, generation)
    except storage.ConditionFailedError:
        pass  # the claim is no longer this request's (taken over after its lock): leave it
    except storage.StorageError:
        # The claim expires with its lock; a retry then runs again or meets the kept answer.
        logger.error("could not settle the idempotency key")


def _error_response(exc: Exception) -> tuple[Response, bool]:
    """The response for a domain error, and whether an idempotency key keeps it."""
    if isinstance(exc, ValidationError):
        extra = {"reason": exc.reason} if exc.reason else {}
        return responses.json_error(400, exc.message, field=exc.field, **extra), False
    if isinstance(exc, TryLaterError):
        extra = {"reason": exc.reason} if exc.reason else {}
        response = responses.json_error(429, exc.message, **extra)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response, False
    if isinstance(exc, NotFoundError):
        return responses.json_error(404, exc.message), False
    if isinstance(exc, ForbiddenError):
        return responses.json_error(403, exc.message), False
    if isinstance(exc, ConflictError):
        extra = {"reason": exc.reason} if exc.reason else {}
        return responses.json_error(409, exc.message, **extra, **exc.details), False
    if isinstance(exc, TwilioRequestError):
        status = exc.status or 400
        return responses.json_error(status, exc.message, twilio_code=exc.code), True
    if isinstance(exc, TwilioTimeoutError):
        logger.error("Twilio timed out")
        return responses.json_error(504, exc.message), False
    if isinstance(exc, TwilioUnavailableError):
        logger.error("Twilio unavailable", extra={"twilio_code": exc.code, "status": exc.status})
        message = "Twilio could not handle the request"
        return responses.json_error(502, message, twilio_code=exc.code), False
    if isinstance(exc, UnavailableError):
        response = responses.json_error(503, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response, False
    if isinstance(exc, ConfigurationError):
        logger.error("parameter unusable", extra={"parameter": exc.parameter})
        return responses.json_error(500, exc.message, parameter=exc.parameter), False
    if isinstance(exc, parameters.MissingParameterError):
        logger.error("required parameter missing", extra={"parameter": exc.name})
        message = f"the deployment's parameter {exc.name} is not set"
        return responses.json_error(500, message), False
    if isinstance(exc, parameters.ParameterStoreError):
        logger.error("parameter store unreachable")
        return responses.json_error(503, "the parameter store cannot be reached; try again"), False
    if isinstance(exc, storage.StorageError):
        logger.error("storage unavailable")
        return responses.json_error(503, "storage cannot be reached; try again"), False
    if isinstance(exc, settings.SettingError):
        logger.error("setting unusable", extra={"setting": exc.name})
        return responses.json_error(500, f"the deployment's setting {exc.name} is unusable"), False
    raise exc
