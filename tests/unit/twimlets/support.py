"""Helpers for the twimlet unit tests: requests as API Gateway decodes them, TwiML as trees."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl

from chalicelib.twimlets.common import Inputs, read
from chalicelib.webhooks.signature import Params, VerifiedRequest

BASE = "https://voice.example.com"
EXECUTE_API = "https://abc123.execute-api.us-east-1.amazonaws.com/api"


def gateway_pairs(query: str) -> list[tuple[str, str]]:
    """The query as API Gateway hands it over: decoded, grouped by name in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        grouped.setdefault(name, []).append(value)
    return [(name, value) for name, values in grouped.items() for value in values]


def request(query: str = "", form: Any = None, *, base: str = BASE) -> Inputs:
    """Inputs of a verified request to base/twimlets/... with this query and form body."""
    pairs = list(form.items()) if isinstance(form, dict) else list(form or [])
    verified = VerifiedRequest(
        url=f"{base}/twimlets/x?{query}",
        query=Params(gateway_pairs(query)),
        form=Params(pairs),
        base_url=base,
    )
    return read(verified)


def tree(document: str) -> Any:
    """A TwiML document as nested tuples: tag, attributes, text, children (order kept)."""

    def walk(element: ET.Element) -> Any:
        return (
            element.tag,
            dict(element.attrib),
            element.text or "",
            tuple(walk(child) for child in element),
        )

    return walk(ET.fromstring(document.encode("utf-8")))


def assert_twiml(actual: Any, expected: str) -> None:
    """actual is a TwiML string equal to expected once both are parsed."""
    assert isinstance(actual, str), actual
    assert tree(actual) == tree(expected)
