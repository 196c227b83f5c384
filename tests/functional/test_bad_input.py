"""Bad input over every route, property-based: what a stranger or a careless caller can send.

Every route of app.py (read from its decorators, so a new route is covered without editing this
file) gets arbitrary query strings, form and JSON bodies, PHP-array names, header spellings,
content types, invalid UTF-8 and the base64 flag on and off, signed and unsigned, as API Gateway
REST events. Properties: no 5xx (the healthy local stack has none of the documented fail-closed
causes); TwiML parses as XML with a <Response> root and only verbs and nouns Twilio knows; a
JSON error has a message, and a 400 names the field; nothing is stored for a request the app
refused. SWITCHBOARD_FUZZ_EXAMPLES sets the examples per route (default 25; the long run: 2000).
"""

from __future__ import annotations

import base64
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import demo, resources
from devkit.events import rest_event, twilio_event
from tests.functional.conftest import EXECUTE_API

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "25"))
ROUTES = [
    (path, method.strip().strip("\"'"))
    for path, methods in re.findall(
        r'@app\.route\(\s*"([^"]+)",\s*methods=\[([^\]]+)\]', (ROOT / "app.py").read_text()
    )
    for method in methods.split(",")
]
# TwiML's verbs and nouns (Twilio's reference); anything else in an answer is a bug.
TWIML = {
    "Response", "Say", "Play", "Pause", "Dial", "Number", "Client", "Conference", "Queue", "Sip",
    "Gather", "Record", "Redirect", "Hangup", "Reject", "Message", "Body", "Media", "Enqueue",
    "Leave", "Identity", "Parameter", "Stream", "Connect", "Sms",
}  # fmt: skip
JSON_ROUTES = {"/messages", "/calls", "/broadcasts"}

names = st.one_of(
    st.sampled_from(["To", "From", "Body", "CallSid", "MessageSid", "Digits", "PhoneNumber"]),
    st.sampled_from(["PhoneNumbers[]", "Moderators[]", "Options[1]", "a[b][c]", "x[", "]", "[]"]),
    st.text(max_size=12),
)
values = st.one_of(
    st.sampled_from(["+15105551212", "", "0", "-1", "1e309", "<Say>x</Say>", "&amp;", "%00"]),
    st.text(max_size=40),
)
pairs = st.lists(st.tuples(names, values), max_size=8)
bodies = st.one_of(
    st.none(),
    pairs.map(urlencode),
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ).map(json.dumps),
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
    ]
)
path_values = st.text(min_size=1, max_size=40).filter(lambda text: "/" not in text)


def _items(table: str) -> int:
    return boto3.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"]


def _url(path: str, fill: str, query: list[tuple[str, str]]) -> str:
    concrete = re.sub(r"\{\w+\}", quote(fill, safe=""), path)
    return EXECUTE_API + concrete + ("?" + urlencode(query) if query else "")


def _check_answer(response: dict[str, Any], where: str) -> None:
    status = response["statusCode"]
    assert status < 500, f"{where}: {status} {response.get('body', '')[:200]!r}"
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    kind = headers.get("content-type", "")
    if "xml" in kind and body:
        root = ET.fromstring(body)  # caller text must come back escaped
        assert root.tag == "Response", where
        assert {element.tag for element in root.iter()} <= TWIML, where
    if "json" in kind and body and status >= 400:
        error = json.loads(body)["error"]
        assert error["message"], where
        if status == 400:
            assert error.get("field"), f"{where}: a 400 without its field: {error}"


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_every_route_survives_what_anyone_can_send(caller, ssm, path, method, record_property):
    table = resources.names("dev")["MessagesTable"]
    tried = [0]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        query=pairs,
        body=bodies,
        content_type=content_types,
        encode=st.booleans(),
        sign=st.booleans(),
        fill=path_values,
        header_case=st.sampled_from([str.title, str.lower, str.upper]),
    )
    def run(query, body, content_type, encode, sign, fill, header_case):
        tried[0] += 1
        url = _url(path, fill, query)
        headers = {header_case("content-type"): content_type} if content_type else {}
        before = _items(table)
        if sign and method in ("GET", "POST") and isinstance(body, str | None):
            form = [] if body is None or method == "GET" else _form(body)
            event = twilio_event(
                url,
                form,
                auth_token=demo.AUTH_TOKEN,
                routes=caller.routes,
                method=method,
                base64_body=encode,
            )
        else:
            raw = body.encode() if isinstance(body, str) else body
            # API Gateway hands a body that is not UTF-8 over base64-encoded, never raw.
            encode = encode or isinstance(body, bytes)
            event = rest_event(
                method, url, routes=caller.routes, body=raw, headers=headers, base64_body=encode
            )
        response = caller.invoke(event)
        _check_answer(response, f"{method} {path}")
        if response["statusCode"] >= 400:
            assert _items(table) == before, f"{method} {path} refused yet stored something"

    run()
    record_property("bad_inputs", tried[0])  # summed in the run's summary (conftest)


def _form(body: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    try:
        return parse_qsl(body, keep_blank_values=True)
    except ValueError:
        return []


# --- the JSON API's fields -------------------------------------------------------------------

ABSURD = [
    None,
    True,
    -1,
    10**400,
    1e308,
    "",
    "x" * 100_000,
    "\ud800",
    [],
    {},
    ["+15105551212"],
    {"a": "b"},
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "+1" + "5" * 40,
]
VALID = {
    "/messages": {"to": "+15105551212", "body": "hi"},
    "/calls": {"to": "+15105551212", "say": "hi"},
    "/broadcasts": {"to": ["+15105551212"], "body": "hi"},
}
FIELDS = {
    "/messages": ["to", "body", "from", "send_at", "timezone", "not_before", "media_urls"],
    "/calls": ["to", "say", "twiml", "url", "from"],
    "/broadcasts": ["to", "body", "send_at", "from"],
}


@pytest.mark.parametrize("path", sorted(JSON_ROUTES))
def test_each_field_of_the_json_api_refuses_absurd_values_by_name(caller, twilio, path):
    table = resources.names("dev")["MessagesTable"]
    for field in FIELDS[path]:
        for value in ABSURD:
            payload = {**VALID[path], field: value}
            text = json.dumps(payload)  # lone surrogates pass through as \ud800
            before = _items(table)
            response = caller.api(path, text)
            status = response["statusCode"]
            where = f"{path} {field}={str(value)[:30]!r}"
            assert status < 500, f"{where}: {status} {response['body'][:200]}"
            if status == 400:
                assert response["json"]["error"].get("field"), where
            else:
                # Values that are valid (an empty optional field, a list of one number) may pass.
                assert status in (200, 201, 202, 409, 429), f"{where}: {status}"
                continue
            assert _items(table) == before, f"{where}: refused yet stored something"


@pytest.mark.parametrize("path", sorted(JSON_ROUTES))
@pytest.mark.parametrize(
    "body",
    ["{", "[]", '"text"', "null", "1", '{"to": }', '{"\\ud800": 1}', '{"' + "k" * 10_000 + '": 1}'],
)
def test_invalid_json_is_a_400(caller, path, body):
    response = caller.api(path, body)
    assert response["statusCode"] == 400, (path, body[:20], response["body"][:200])
    assert response["json"]["error"]["message"]


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024, 10 * 1024 * 1024])
@pytest.mark.parametrize("path", ["/sms", "/twimlets/forward", "/messages"])
def test_bodies_up_to_api_gateways_10_mb_are_refused_cleanly(caller, ssm, path, size):
    table = resources.names("dev")["MessagesTable"]
    before = _items(table)
    body = "Body=" + "x" * (size - 5)
    if path == "/messages":
        response = caller.api(path, json.dumps({"to": "+15105551212", "body": "x" * size}))
    else:
        response = caller.webhook(path, [("Body", body[5:])])
    assert response["statusCode"] in (400, 413), (path, size, response["statusCode"])
    assert _items(table) == before
