"""The softphone page in a real browser (Debian's chromium through Playwright), served by
`chalice local` against the moto server's Cognito and the local Twilio, as `make run` serves it.

Signing in goes to the moto server's Cognito API from the page itself; the token comes from
POST /client/token through chalice local's Cognito authorizer. Twilio's voice servers cannot be
reached from here: one test runs the vendored SDK for real (it loads under the CSP and its
integrity hash and takes the app's token); the call-handling tests swap in a stand-in Device
(fake_voice_sdk.js) that keeps the SDK's events and methods.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devkit import cognito, demo, stack

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
FAKE_SDK = (Path(__file__).with_name("fake_voice_sdk.js")).read_text()
# As the machine's notes advise: without the background-networking flags Chromium keeps
# trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
OUTSIDER, OUTSIDER_PASSWORD = "mallory", "Local-demo-password-2"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no browser at {CHROMIUM}: `make test` installs Debian's chromium (apt) as root",
    ),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(moto_server: Any, fake_twilio: Any) -> Iterator[str]:
    """chalice local on a free port, with the softphone's parameters and user pool."""
    moto_url = moto_server.url
    moto_server.faults.reset()
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()
    ssm = stack._client("ssm", moto_url)
    demo.put_parameters(
        ssm,
        demo.SSM_PATH,
        {
            **demo.parameters(api_key=True),
            "voice/twiml_app_sid": (demo.TWIML_APP_SID, "String"),
        },
    )
    idp = stack._client("cognito-idp", moto_url)
    pool = cognito.create_local(idp, "dev")
    # In the pool but not in the softphone group.
    idp.admin_create_user(UserPoolId=pool["pool_id"], Username=OUTSIDER, MessageAction="SUPPRESS")
    idp.admin_set_user_password(
        UserPoolId=pool["pool_id"], Username=OUTSIDER, Password=OUTSIDER_PASSWORD, Permanent=True
    )
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    env = stack.app_environment(moto_url, fake_twilio.url, app_url)
    # Parameters straight from the moto server's SSM: no extension on this port here.
    env.pop("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
    env.pop("AWS_SESSION_TOKEN")
    env.update(
        {
            "SWITCHBOARD_SSM_PATH": demo.SSM_PATH,
            "SWITCHBOARD_USER_POOL_CLIENT_ID": pool["client_id"],
            "SWITCHBOARD_COGNITO_URL": moto_url,
        }
    )
    chalice = str(Path(sys.executable).with_name("chalice"))
    process = subprocess.Popen(
        [
            chalice,
            "--project-dir",
            str(ROOT),
            "local",
            "--stage",
            "dev",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--no-autoreload",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        stack.wait_for_port("127.0.0.1", port, timeout=60, process=process)
        yield app_url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A browser tab on the softphone, with what its console reported."""

    def __init__(self, browser: Any, url: str, *, fake_sdk: bool, sdk_body: str | None = None):
        self.context = browser.new_context(permissions=["microphone"])
        self.tab = self.context.new_page()
        self.console: list[str] = []
        self.tab.on("console", lambda message: self.console.append(message.text))
        self.tab.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.tokens: list[dict[str, Any]] = []
        self.tab.on("response", self._token_response)
        if fake_sdk:
            self.tab.add_init_script(FAKE_SDK)
            self.tab.route("**/phone/twilio.min.js", lambda route: route.abort())
        elif sdk_body is not None:  # the SDK's file served changed
            self.tab.route(
                "**/phone/twilio.min.js",
                lambda route: route.fulfill(
                    status=200, content_type="text/javascript", body=sdk_body
                ),
            )
        self.response = self.tab.goto(url + "/phone")

    def _token_response(self, response: Any) -> None:
        if response.url.endswith("/client/token") and response.ok:
            self.tokens.append(response.json())

    def sign_in(self, username: str = cognito.DEMO_USER, password: str = cognito.DEMO_PASSWORD):
        self.tab.fill("#username", username)
        self.tab.fill("#password", password)
        self.tab.click("#sign-in")

    def status(self) -> str:
        return self.tab.inner_text("#status")

    def wait_status(self, *fragments: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.status()
            if any(fragment in text for fragment in fragments):
                return text
            self.tab.wait_for_timeout(100)
        raise AssertionError(f"status stayed {self.status()!r}; console: {self.console}")

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser: Any, served: str) -> Iterator[Any]:
    pages: list[Page] = []

    def open_page(*, fake_sdk: bool = True) -> Page:
        page = Page(browser, served, fake_sdk=fake_sdk)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_real_sdk_loads_under_the_csp_and_takes_the_apps_token(open_page):
    page = open_page(fake_sdk=False)
    assert "script-src 'self'" in page.response.headers["content-security-policy"]
    page.sign_in()
    # Offline, the SDK's connection to Twilio fails: the page says so, signed in all the same.
    page.wait_status("Connecting", "Phone error", "Ready")
    assert page.tab.inner_text("#identity") == cognito.DEMO_USER
    assert page.tab.evaluate("typeof window.Twilio.Device") == "function"
    assert page.tab.evaluate("window.Twilio.Device.version") == "2.18.5"
    (grant,) = page.tokens
    assert _claims(grant["token"])["grants"]["identity"] == cognito.DEMO_USER
    assert page.csp_violations() == []
    assert not [line for line in page.console if line.startswith("pageerror")]


def test_a_tampered_sdk_does_not_run(browser, served):
    page = Page(browser, served, fake_sdk=False, sdk_body="window.Twilio={Device:class{}};")
    try:
        page.sign_in()
        assert page.wait_status("did not load") == "The Voice SDK did not load"
        assert any("integrity" in line for line in page.console), page.console
    finally:
        page.close()


def test_a_wrong_password_shows_cognitos_message_and_no_token(open_page):
    page = open_page()
    page.sign_in(password="not-the-password")
    assert "Incorrect username or password" in page.wait_status("Incorrect")
    assert page.tokens == []
    assert page.tab.is_hidden("#phone")


def test_a_user_outside_the_softphone_group_gets_no_phone(open_page):
    page = open_page()
    page.sign_in(OUTSIDER, OUTSIDER_PASSWORD)
    assert "not in the softphone group" in page.wait_status("no phone token")
    assert page.tab.evaluate("window.__device === undefined")


def test_dial_pad_call_mute_and_hang_up(open_page):
    page = open_page()
    page.sign_in()
    page.wait_status("Ready")
    for digit in "4155550123":
        page.tab.click(f"#pad [data-digit='{digit}']")
    assert page.tab.input_value("#to") == "4155550123"
    page.tab.fill("#to", "+14155550123")
    page.tab.click("#call")
    page.tab.wait_for_function("window.__device.calls.length === 1")
    assert page.tab.evaluate("window.__device.calls[0].to") == "+14155550123"
    page.tab.evaluate("window.__device.calls[0].accept()")
    assert page.tab.inner_text("#call-state") == "in call"
    assert page.tab.is_disabled("#call")
    page.tab.click("#mute")
    assert page.tab.evaluate("window.__device.calls[0].isMuted()") is True
    assert page.tab.get_attribute("#mute", "aria-pressed") == "true"
    page.tab.click("#pad [data-digit='5']")  # in a call the pad sends DTMF
    assert page.tab.evaluate("window.__device.calls[0].digits") == "5"
    page.tab.click("#hang-up")
    assert page.tab.inner_text("#call-state") == "ended"
    assert page.tab.is_enabled("#call")
    assert page.tab.is_disabled("#mute")
    # the Device was made with the app's token for this user
    token = page.tab.evaluate("window.__device.token")
    assert _claims(token)["grants"]["voice"]["outgoing"]["application_sid"] == demo.TWIML_APP_SID


def test_an_incoming_call_can_be_accepted_or_rejected(open_page):
    page = open_page()
    page.sign_in()
    page.wait_status("Ready")
    page.tab.evaluate("window.__device.ring('+15105551212')")
    assert page.tab.is_visible("#incoming")
    assert "+15105551212" in page.tab.inner_text("#incoming-from")
    page.tab.click("#reject")
    assert page.tab.evaluate("window.__device.calls[0].status") == "closed"
    assert page.tab.is_hidden("#incoming")
    assert page.tab.inner_text("#call-state") == "rejected"
    page.tab.evaluate("window.__device.ring('client:bob')")
    page.tab.click("#accept")
    assert page.tab.evaluate("window.__device.calls[1].status") == "open"
    assert page.tab.inner_text("#call-state") == "in call"
    page.tab.evaluate("window.__device.calls[1].disconnect()")
    assert page.tab.inner_text("#call-state") == "ended"


def test_a_caller_who_hangs_up_first_is_a_missed_call(open_page):
    page = open_page()
    page.sign_in()
    page.wait_status("Ready")
    page.tab.evaluate("window.__device.ring('+15105551212').emit('cancel')")
    assert page.tab.is_hidden("#incoming")
    assert page.tab.inner_text("#call-state") == "missed"


def test_sign_out_forgets_the_session(open_page):
    page = open_page()
    page.sign_in()
    page.wait_status("Ready")
    page.tab.click("#sign-out")
    assert page.status() == "Signed out"
    assert page.tab.evaluate("window.__device.destroyed") is True
    assert page.tab.is_visible("#login")
    assert page.tab.input_value("#password") == ""


def test_the_page_talks_to_nothing_but_itself_cognito_and_twilio(open_page, served, moto_server):
    page = open_page()
    hosts: set[str] = set()
    page.tab.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.sign_in()
    page.wait_status("Ready")
    assert hosts <= {served.split("/")[2], moto_server.url.split("/")[2]}
