"""GET /phone and its files through API Gateway events: headers, the vendored SDK's integrity,
and nothing served but the page's own files."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from chalicelib.browser import page
from devkit.events import rest_event
from tests.functional.conftest import EXECUTE_API


def get(caller, path: str) -> dict:
    return caller.invoke(rest_event("GET", EXECUTE_API + path, routes=caller.routes))


def test_the_page_has_a_strict_policy_and_the_stages_sign_in_settings(caller):
    response = get(caller, "/phone")
    assert response["statusCode"] == 200
    headers = response["headers"]
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "https://cognito-idp.us-east-1.amazonaws.com" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    body = response["body"]
    assert 'data-client-id="test-softphone-client"' in body
    # no inline script or handler: the policy would block them
    assert "<script>" not in body and not re.search(r"\son[a-z]+=", body)


def test_the_sdk_is_served_with_the_integrity_hash_of_the_vendored_file(caller):
    script = (page.STATIC / "twilio.min.js").read_bytes()
    digest = "sha384-" + base64.b64encode(hashlib.sha384(script).digest()).decode()
    record = json.loads((page.STATIC / "vendored.json").read_text())
    assert record["integrity"] == digest
    assert record["package"] == "@twilio/voice-sdk"
    assert re.fullmatch(r"\d+\.\d+\.\d+", record["version"])  # pinned, never a range
    assert record["version"].encode() in script
    body = get(caller, "/phone")["body"]
    assert f'src="phone/twilio.min.js" integrity="{digest}"' in body
    served = get(caller, "/phone/twilio.min.js")
    assert served["statusCode"] == 200
    assert served["body"].encode() == script
    assert served["headers"]["Content-Type"].startswith("text/javascript")


def test_the_sdks_licence_is_served_beside_it(caller):
    response = get(caller, "/phone/LICENSE-twilio-voice-sdk.md")
    assert response["statusCode"] == 200
    assert "Twilio" in response["body"]


@pytest.mark.parametrize(
    "name", ["vendored.json", "phone.html", "..%2Fpage.py", "%2e%2e", "twilio.js", "x" * 300]
)
def test_nothing_but_the_pages_files_is_served(caller, name):
    response = get(caller, f"/phone/{name}")
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["field"] == "name"


def test_without_a_user_pool_the_page_says_what_is_missing(caller, monkeypatch):
    monkeypatch.delenv("SWITCHBOARD_USER_POOL_CLIENT_ID")
    response = get(caller, "/phone")
    assert response["statusCode"] == 503
    assert "SWITCHBOARD_USER_POOL_CLIENT_ID" in response["body"]


def test_settings_are_escaped_into_the_page(caller, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_USER_POOL_CLIENT_ID", '"><script>alert(1)</script>')
    body = get(caller, "/phone")["body"]
    assert "<script>alert(1)" not in body
    assert "&quot;&gt;&lt;script&gt;" in body
