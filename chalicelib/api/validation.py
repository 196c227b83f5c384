"""Input validation for the JSON API: each failure names the field it is about."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

E164 = re.compile(r"\+[1-9]\d{1,14}")
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
# Twilio's alphanumeric sender ID: 1 to 11 of A-Z, a-z, 0-9 and space, at least one letter.
ALPHANUMERIC_SENDER = re.compile(r"(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9 ]{1,11}")
HTTP_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")
BODY = "$"  # the field an error names when it is about the request body as a whole (JSONPath)


class ValidationError(Exception):
    """The request's input is unusable; field names the offending input when there is one."""

    def __init__(
        self, message: str, field: str | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # Machine-readable, for refusals a client may act on ("blocked_prefix", ...).
        self.reason = reason


def json_object(raw_body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object.

    Raises:
        ValidationError: the body is empty, not UTF-8 JSON, or not an object.
    """
    try:
        payload = json.loads(raw_body.decode("utf-8")) if raw_body else None
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the request body is not valid JSON", BODY) from None
    if not isinstance(payload, dict):
        raise ValidationError("the request body must be a JSON object", BODY)
    for key, value in payload.items():
        if not _encodable(key):
            raise ValidationError("a field name is not valid Unicode text (a lone surrogate)", BODY)
        if not _encodable(value):
            raise ValidationError(
                f"{key} holds text that is not valid Unicode (a lone surrogate)", key
            )
    return payload


def _encodable(value: Any) -> bool:
    """Whether every string in value encodes to UTF-8.

    JSON may escape half a surrogate pair ("\\ud800"): json.loads gives a str that DynamoDB, the
    Twilio client and the logs cannot encode, which would fail later as if storage were down.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(item) for item in value)
    return True


def only_keys(payload: dict[str, Any], allowed: Iterable[str]) -> None:
    """Refuse keys the route does not know (a typo must not silently change a send).

    Raises:
        ValidationError: naming the first unknown key.
    """
    allowed_set = set(allowed)
    for key in payload:
        if key not in allowed_set:
            raise ValidationError(f"unknown field {key!r}", key)


def string(payload: dict[str, Any], field: str, *, required: bool = False) -> str | None:
    """A string field, or None when absent.

    Raises:
        ValidationError: it is required and missing, or not a string.
    """
    value = payload.get(field)
    if value is None:
        if required:
            raise ValidationError(f"{field} is required", field)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field)
    return value


def phone_number(payload: dict[str, Any], field: str, *, required: bool = False) -> str | None:
    """An E.164 phone number field (+14155550100), or None when absent.

    Raises:
        ValidationError: missing when required, or not E.164.
    """
    value = string(payload, field, required=required)
    if value is not None and not E164.fullmatch(value):
        raise ValidationError(f"{field} must be an E.164 phone number such as +14155550100", field)
    return value


def sender(payload: dict[str, Any], field: str = "from") -> str | None:
    """A sender: an E.164 number, a Messaging Service SID (MG...) or an alphanumeric sender ID,
    or None when absent (guards.senders checks that the account may use it).

    Raises:
        ValidationError: it is none of them.
    """
    value = string(payload, field)
    if value is not None and not (
        E164.fullmatch(value)
        or MESSAGING_SERVICE_SID.fullmatch(value)
        or ALPHANUMERIC_SENDER.fullmatch(value)
    ):
        raise ValidationError(
            f"{field} must be an E.164 number, a Messaging Service SID (MG...) or an "
            "alphanumeric sender ID",
            field,
        )
    return value


def url_list(payload: dict[str, Any], field: str, *, most: int) -> list[str]:
    """A list of 1 to most http(s) URLs, or [] when absent.

    Raises:
        ValidationError: not a list, empty, too long, or holding a non-URL.
    """
    value = payload.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not value or len(value) > most:
        raise ValidationError(f"{field} must be a list of 1 to {most} URLs", field)
    for item in value:
        if not isinstance(item, str) or not HTTP_URL.fullmatch(item):
            raise ValidationError(f"{field} must hold only http(s) URLs", field)
    return value


def page_token(last: dict[str, Any] | None) -> str | None:
    """The `next` token for a page that ended at DynamoDB's LastEvaluatedKey (None: the end)."""
    if not last:
        return None
    return base64.urlsafe_b64encode(json.dumps(last).encode()).decode().rstrip("=")


def page_start(token: str | None, keys: set[str]) -> dict[str, Any] | None:
    """The ExclusiveStartKey a `next` token names; it must hold exactly these keys.

    Raises:
        ValidationError: next is not a token this API gave.
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        start = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if isinstance(start, dict) and set(start) == keys:
            return start
    except ValueError:
        pass
    raise ValidationError("next is not a token this API gave", "next")
