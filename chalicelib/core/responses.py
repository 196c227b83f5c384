"""HTTP responses in one place: TwiML, plain-text webhook errors and JSON API errors."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

TWIML_CONTENT_TYPE = "text/xml; charset=utf-8"


def twiml(document: str) -> Response:
    """A TwiML answer; Twilio rejects a response without an XML Content-Type (error 12300)."""
    return Response(body=document, status_code=200, headers={"Content-Type": TWIML_CONTENT_TYPE})


def plain(status: int, text: str) -> Response:
    """A short plain-text answer, for webhook errors Twilio will show in its debugger."""
    return Response(
        body=text, status_code=status, headers={"Content-Type": "text/plain; charset=utf-8"}
    )


def redirect(location: str) -> Response:
    """A 302 to location, as the original Twimlets answer their FailUrl and menu options."""
    return Response(body="", status_code=302, headers={"Location": location})


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer for the IAM-authorised API."""
    return Response(
        body=json.dumps(data),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def json_error(
    http_status: int,
    message: str,
    *,
    field: str | None = None,
    twilio_code: int | None = None,
    **extra: Any,
) -> Response:
    """The API's error shape: {"error": {"message", "field"?, "twilio_code"?, ...}}."""
    error: dict[str, Any] = {"message": message}
    if field is not None:
        error["field"] = field
    if twilio_code is not None:
        error["twilio_code"] = twilio_code
    error.update(extra)
    return json_response(http_status, {"error": error})
