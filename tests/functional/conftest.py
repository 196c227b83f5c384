"""Real parts over HTTP: a moto server for AWS and the local fake Twilio API, shared per session.

Each test gets freshly seeded parameters, an empty fake Twilio and an app whose caches are cold,
and drives ``app.app(event, context)`` with real API Gateway REST events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from chalicelib.aws import parameters, queue, storage
from chalicelib.core import clock, settings
from chalicelib.guards import senders
from chalicelib.telephony import twilio_rest
from devkit import demo, resources
from devkit.aws_faults import AwsFaults
from devkit.events import LambdaContext, rest_event, twilio_event
from devkit.fake_twilio import FakeTwilio
from devkit.moto_server import MotoServer, advance_sqs_clock, reset_sqs_clock
from devkit.worker import QueueDriver, schedule_event

EXECUTE_API = "https://abc123defg.execute-api.us-east-1.amazonaws.com/api"
ROTATED_TOKEN = "rotated-demo-auth-token"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def moto_url(moto_server: MotoServer) -> str:
    return moto_server.url


@pytest.fixture
def aws_faults(moto_server: MotoServer) -> Iterator[AwsFaults]:
    """The moto server's fault layer (devkit/aws_faults.py), off before and after the test."""
    moto_server.faults.reset()
    yield moto_server.faults
    moto_server.faults.reset()


@pytest.fixture(scope="session")
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(
        accounts={demo.ACCOUNT_SID: demo.AUTH_TOKEN},
        api_keys={demo.API_KEY_SID: (demo.API_KEY_SECRET, demo.ACCOUNT_SID)},
    ) as fake:
        # The account owns the demo number, which is the default sender (guards.senders).
        fake.numbers.add(demo.ACCOUNT_SID, demo.NUMBER)
        yield fake


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, moto_url: str, fake_twilio: FakeTwilio
) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "SWITCHBOARD_", "TWILIO_", "PARAMETERS_SECRETS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", demo.REGION)
    for name, value in demo.AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SWITCHBOARD_SSM_PATH", demo.SSM_PATH)
    monkeypatch.setenv("TWILIO_API_BASE_URL", fake_twilio.url)
    names = resources.names("dev")
    monkeypatch.setenv("SWITCHBOARD_TABLE", names["MessagesTable"])
    monkeypatch.setenv("SWITCHBOARD_QUEUE", names["SendQueue"])
    # Production never sends at 1,000/s (the default is 1/s, a long code's rate). At this rate
    # pacing delays round to zero, so what pacing does is not exercised by the tests that keep
    # it: the worker holding a job until its slot, the dispatcher's horizon (two minutes of
    # slots) leaving the rest of a broadcast in the table, retries waiting a slot beyond their
    # backoff. Tests of those set the rate themselves; test_pacing.py's end-to-end test runs
    # the default rate (a scheduled message, a broadcast, a retry after a 429).
    monkeypatch.setenv("SWITCHBOARD_SEND_RATE", "1000")
    # The softphone page's user pool client (tests/functional/browser start a real one).
    monkeypatch.setenv("SWITCHBOARD_USER_POOL_CLIENT_ID", "test-softphone-client")
    settings.reset()
    yield
    settings.reset()


@pytest.fixture
def ssm(environment: None, moto_server: MotoServer, moto_url: str) -> Any:
    """A fresh moto server: demo parameters, and the table and queues of infra/resources.json."""
    # No fault of an earlier test (or one scripted before this fixture) may hit the seeding.
    moto_server.faults.reset()
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()
    reset_sqs_clock()
    client = boto3.client("ssm")
    demo.put_parameters(client, demo.SSM_PATH, demo.parameters())
    resources.create("dev", dynamodb=boto3.client("dynamodb"), sqs=boto3.client("sqs"))
    return client


@pytest.fixture
def twilio(fake_twilio: FakeTwilio) -> FakeTwilio:
    fake_twilio.reset()
    return fake_twilio


@pytest.fixture
def app(ssm: Any, twilio: FakeTwilio) -> Iterator[Any]:
    import app as application

    _reset_clients()
    yield application.app
    _reset_clients()
    clock.set_clock(None)


def _reset_clients() -> None:
    parameters.reset()
    storage.reset()
    queue.reset()
    twilio_rest._client_cache.clear()
    senders.reset()


@pytest.fixture
def jobs(app: Any) -> QueueDriver:
    """Drives the real send queue through the worker handler, as Lambda's event source would."""
    import app as application

    return QueueDriver(
        boto3.client("sqs"), resources.names("dev")["SendQueue"], application.send_worker
    )


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A URL whose server accepts connections and never answers: only timeouts end a call."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def run_schedule(handler: str) -> Any:
    """Invoke a schedule handler (dispatch_due, reconcile_sending) as EventBridge does."""
    import app as application

    return getattr(application, handler)(schedule_event(handler), LambdaContext(handler))


class Clock:
    """The app's clock, moved by tests instead of sleeping."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Time passes for the app and for SQS's delays and visibility timeouts alike."""
        self.now += seconds
        advance_sqs_clock(seconds)


@pytest.fixture
def frozen(app: Any, twilio: FakeTwilio) -> Iterator[Clock]:
    """Freeze the app's clock at the real now; tests advance it. The local Twilio dates what it
    creates on the same clock, as Twilio's and AWS's clocks agree in production."""
    import time

    # A whole second: a send_at given to the millisecond then lands exactly where a test moves
    # the clock (from an arbitrary float, ISO's rounding to the microsecond can put it a few
    # hundred nanoseconds later, and the worker rightly waits for it: a rare flaky failure).
    fake = Clock(float(int(time.time())))
    clock.set_clock(fake)
    twilio.clock = fake
    yield fake
    twilio.clock = time.time


class Caller:
    """Sends signed webhooks and API requests to the app as API Gateway events."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.routes = list(app.routes)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.app(event, LambdaContext())

    def webhook(
        self,
        path: str,
        params: Any = None,
        *,
        base: str = EXECUTE_API,
        token: str = demo.AUTH_TOKEN,
        **options: Any,
    ) -> dict[str, Any]:
        options.setdefault("base_path", _base_path(base))
        event = twilio_event(base + path, params, auth_token=token, routes=self.routes, **options)
        return self.invoke(event)

    def api(
        self,
        path: str,
        payload: Any = None,
        *,
        base: str = EXECUTE_API,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        claims: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = None
        if payload is not None:
            body = payload if isinstance(payload, str) else json.dumps(payload)
        event = rest_event(
            method,
            base + path,
            routes=self.routes,
            body=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            base_path=_base_path(base),
            claims=claims,
        )
        response = self.invoke(event)
        response["json"] = json.loads(response["body"]) if response["body"] else None
        return response


def _base_path(base: str) -> str:
    from urllib.parse import urlsplit

    return "" if ".execute-api." in base else urlsplit(base).path


@pytest.fixture
def caller(app: Any) -> Caller:
    return Caller(app)


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Any:
    """Call to get every JSON log line printed so far, parsed."""

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]

    return read


@pytest.fixture
def rotate(ssm: Any, twilio: FakeTwilio) -> Iterator[Any]:
    """Rotate the account's auth token in Twilio and in SSM, as an operator does."""
    rotated = []

    def rotate(token: str = ROTATED_TOKEN, *, in_ssm: bool = True) -> None:
        old = twilio.set_auth_token(demo.ACCOUNT_SID, token)
        if not rotated:
            rotated.append(old)
        if in_ssm:
            ssm.put_parameter(
                Name=f"{demo.SSM_PATH}/twilio/auth_token",
                Value=token,
                Type="SecureString",
                Overwrite=True,
            )

    yield rotate
    if rotated:  # the local Twilio lives for the session
        twilio.set_auth_token(demo.ACCOUNT_SID, rotated[0])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many bad inputs each route was sent (tests/functional/test_bad_input.py)."""
    tried = {
        report.nodeid.split("[", 1)[-1].rstrip("]"): value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "bad_inputs"
    }
    if tried:
        routes = ", ".join(f"{route} {count}" for route, count in sorted(tried.items()))
        terminalreporter.write_line(f"bad inputs per route: {routes}")
