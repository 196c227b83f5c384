"""API Gateway REST (v1) proxy events as Twilio's requests produce them, signed like Twilio signs.

Tests, the benchmark and the phone simulator drive ``app.app(event, context)`` with these, which
is the only way to exercise the stage prefix, custom domains and base64 bodies that Chalice's test
client and ``chalice local`` leave out.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from twilio.request_validator import HMAC_SHA256, SIGNATURE_SETTINGS_HEADER, RequestValidator

Pairs = Sequence[tuple[str, str]]


class LambdaContext:
    """The attributes of Lambda's context object that the app reads."""

    def __init__(self, function_name: str = "switchboard-dev") -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.memory_limit_in_mb = 128
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def match_route(path: str, routes: Iterable[str]) -> tuple[str, dict[str, str]]:
    """The route template matching path, with its captured path parameters.

    Raises:
        LookupError: no route matches.
    """
    for route in routes:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route))
        found = re.fullmatch(pattern, path)
        if found:
            return route, found.groupdict()
    raise LookupError(f"no route for {path}")


def _as_pairs(params: Mapping[str, str] | Pairs | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def rest_event(
    method: str,
    url: str,
    *,
    routes: Iterable[str],
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    stage: str = "api",
    base_path: str = "",
    base64_body: bool = False,
    local: bool = False,
    claims: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build the event API Gateway sends for a request to url.

    On an execute-api host the first path segment is the stage; on any other host base_path (a
    custom domain's base-path mapping, e.g. "/tel") is the prefix. With local, the event has
    chalice local's shape: no stage, no domain name, no request id, lower-case headers. claims
    are a Cognito authorizer's, as API Gateway passes them once it has checked the ID token
    (REST APIs pass every claim as a string).
    """
    parts = urlsplit(url)
    raw_path = parts.path or "/"
    if local:
        prefix = ""
    elif ".execute-api." in parts.netloc:
        prefix = "/" + stage
    else:
        prefix = base_path.rstrip("/")
    if prefix and not raw_path.startswith(prefix + "/"):
        raise ValueError(f"{url} does not start with {prefix}")
    route_path = raw_path[len(prefix) :]
    resource, path_parameters = match_route(route_path, routes)
    multi: dict[str, list[str]] = {}
    # API Gateway hands the handler the query decoded: "+" and "%20" both become a space.
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        multi.setdefault(name, []).append(value)
    header_map = dict(headers or {})
    if local:
        header_map = {k.lower(): v for k, v in header_map.items()}
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    event_body: str | None
    if raw_body is None:
        event_body = None
    elif base64_body:
        event_body = base64.b64encode(raw_body).decode("ascii")
    else:
        event_body = raw_body.decode("utf-8")
    context: dict[str, Any] = {
        "resourcePath": resource,
        "httpMethod": method,
        "path": raw_path,
        "identity": {"sourceIp": "54.172.60.1", "userAgent": "TwilioProxy/1.1"},
    }
    if not local:
        context.update(
            {
                "stage": stage,
                "domainName": parts.hostname,
                "domainPrefix": (parts.hostname or "").split(".")[0],
                "requestId": str(uuid.uuid4()),
                "apiId": "abc123defg",
                "accountId": "123456789012",
                "protocol": "HTTP/1.1",
                "resourceId": "r1",
            }
        )
    if claims is not None:
        context["authorizer"] = {"claims": dict(claims)}
    return {
        "resource": resource,
        "path": route_path,
        "httpMethod": method,
        "headers": header_map,
        "multiValueHeaders": {k: [v] for k, v in header_map.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": context,
        "body": event_body,
        "isBase64Encoded": base64_body,
    }


class SharedKey(NamedTuple):
    """A SharedKey of Twilio's Webhooks API (public beta): Twilio signs with its secret, instead
    of the auth token, the webhooks a Webhook Rule sends through a Setting naming it."""

    key_id: str
    secret: str
    algorithm: str = HMAC_SHA256

    def settings_header(self) -> str:
        """X-Twilio-Webhooks-Signature-Settings as Twilio sends it with such a webhook."""
        return f"key={self.key_id},algorithm={self.algorithm}"

    def sign(self, url: str, params: Any) -> str:
        """X-Twilio-Signature for url and params, with twilio's own RequestValidator."""
        return RequestValidator(self.secret).compute_signature(url, params, self.algorithm)


def twilio_headers(
    url: str, signature: str, *, form: bool = True, settings: str | None = None
) -> dict[str, str]:
    """Headers as Twilio sends them (no Content-Type on a GET); settings is the
    X-Twilio-Webhooks-Signature-Settings header of a webhook signed with a SharedKey."""
    headers = {
        "Host": urlsplit(url).netloc,
        "User-Agent": "TwilioProxy/1.1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "X-Twilio-Signature": signature,
    }
    if settings is not None:
        headers[SIGNATURE_SETTINGS_HEADER] = settings
    if form:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return headers


def twilio_event(
    url: str,
    params: Mapping[str, str] | Pairs | None = None,
    *,
    auth_token: str,
    routes: Iterable[str],
    method: str = "POST",
    signature: str | None = None,
    sign_url: str | None = None,
    shared_key: SharedKey | None = None,
    settings: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A webhook event for url, signed with auth_token as Twilio signs it, or with shared_key
    (then with the X-Twilio-Webhooks-Signature-Settings header naming it).

    params are the form fields of a POST (blanks and repeats kept, in order); a GET carries its
    parameters in url. sign_url signs a different URL than the one requested (to test mismatches);
    settings sends that settings header instead of the one the signing implies.
    """
    pairs = _as_pairs(params)
    body = None if method == "GET" else urlencode(pairs)
    signed_params = {} if method == "GET" else _Multi(pairs)
    if shared_key is not None:
        signed = shared_key.sign(sign_url or url, signed_params)
        settings = settings if settings is not None else shared_key.settings_header()
    else:
        signed = RequestValidator(auth_token).compute_signature(sign_url or url, signed_params)
    headers = twilio_headers(
        url, signature if signature is not None else signed, form=bool(body), settings=settings
    )
    return rest_event(method, url, routes=routes, body=body, headers=headers, **options)


class _Multi(dict):
    """Repeated names for RequestValidator (it calls getall)."""

    def __init__(self, pairs: Pairs) -> None:
        super().__init__((name, None) for name, _ in pairs)
        self._pairs = list(pairs)

    def getall(self, name: str) -> list[str]:
        return [v for n, v in self._pairs if n == name]
