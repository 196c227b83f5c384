"""GET /phone: the softphone page and its files, served by the app under a strict CSP.

The page signs in against Cognito's own API (InitiateAuth, USER_PASSWORD_AUTH) straight from the
browser: the password goes to Cognito over TLS and never reaches this app, which has no login
route to guard and nothing to store. Twilio's Voice SDK is a pinned npm release vendored in
static/ with its licence and served from here with its integrity hash: nothing is loaded from a
third-party CDN at run time.
"""

from __future__ import annotations

import html
import json
import os
from functools import cache
from pathlib import Path

from chalice.app import Response

from chalicelib.core import responses, settings

STATIC = Path(__file__).with_name("static")
CLIENT_ID = settings.USER_POOL_CLIENT_ID
COGNITO_URL = settings.COGNITO_URL
ASSETS = {
    "phone.js": "text/javascript; charset=utf-8",
    "phone.css": "text/css; charset=utf-8",
    "twilio.min.js": "text/javascript; charset=utf-8",
    "LICENSE-twilio-voice-sdk.md": "text/plain; charset=utf-8",
}
NOT_CONFIGURED = (
    "The softphone is not configured on this deployment: its user pool client "
    f"({CLIENT_ID}) is not set. See the README, Calls in the browser."
)


@cache
def _text(name: str) -> str:
    """A file of static/, read once per container (they change only with a deployment)."""
    return (STATIC / name).read_text()


def vendored() -> dict[str, str]:
    """What static/vendored.json records of the SDK: package, version, file, integrity."""
    return json.loads(_text("vendored.json"))


def cognito_url() -> str:
    """Cognito's API for the stage's region; the local stack points it at the moto server."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return os.environ.get(COGNITO_URL) or f"https://cognito-idp.{region}.amazonaws.com/"


def policy(cognito: str) -> str:
    """The page's Content-Security-Policy: its own files, Cognito's API and Twilio's voice
    endpoints (signalling over wss, the event gateway over https, the SDK's ring tones)."""
    origin = cognito.rstrip("/")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {origin} https://eventgw.twilio.com https://sdk.twilio.com wss://*.twilio.com",
            "media-src 'self' https://sdk.twilio.com blob:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _headers(content_type: str, csp: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        # The microphone for this page only, nothing else.
        "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    }


def page() -> Response:
    """The softphone's HTML, with the stage's Cognito settings in data attributes (the CSP
    forbids inline script)."""
    client_id = os.environ.get(CLIENT_ID)
    if not client_id:
        return Response(
            body=NOT_CONFIGURED + "\n",
            status_code=503,
            headers=_headers("text/plain; charset=utf-8", "default-src 'none'"),
        )
    cognito = cognito_url()
    sdk = vendored()
    body = _text("phone.html").format(
        client_id=html.escape(client_id),
        cognito_url=html.escape(cognito),
        sdk_integrity=html.escape(sdk["integrity"]),
        sdk_version=html.escape(sdk["version"]),
    )
    return Response(
        body=body, status_code=200, headers=_headers("text/html; charset=utf-8", policy(cognito))
    )


def asset(name: str) -> Response:
    """One of the page's files; 404 for any other name (no path is ever joined from input)."""
    content_type = ASSETS.get(name)
    if content_type is None:
        return responses.json_error(404, f"no such file: {name[:64]}", field="name")
    headers = _headers(content_type, "default-src 'none'")
    headers["Cache-Control"] = "public, max-age=300"
    return Response(body=_text(name), status_code=200, headers=headers)
