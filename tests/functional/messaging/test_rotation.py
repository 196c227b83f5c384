"""Rotated Twilio credentials: a warm container still holding the old ones reads the new ones
once, past every cache, when Twilio refuses them (20003), and the call goes through."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.aws import parameters
from chalicelib.messaging import deps, messages
from devkit import demo
from devkit.ssm_extension import ExtensionServer
from tests.functional.conftest import run_schedule

TO = "+15105551212"


@pytest.fixture(params=["by-path", "extension"])
def store(request, ssm, app, monkeypatch):
    """How this container reads SSM: one walk of the path, or the Lambda extension by name."""
    if request.param == "by-path":
        yield None
        return
    with ExtensionServer(boto3.client("ssm"), token=demo.SESSION_TOKEN) as server:
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", demo.SESSION_TOKEN)
        parameters.reset()
        yield server


def warm(caller):
    """A container that has sent once: credentials and client cached (and in the extension)."""
    assert caller.api("/messages", {"to": TO, "body": "warm"})["statusCode"] == 201


def record(message_id):
    return deps.table().get(messages.key(message_id))


def test_a_queued_send_after_rotation_succeeds_on_its_first_attempt(
    caller, twilio, jobs, frozen, store, rotate
):
    warm(caller)
    if store is not None:
        assert store.requests > 0  # the extension served the old token and caches it
    payload = {"to": TO, "body": "after rotation", "send_at": _iso(frozen.now + 61)}
    message_id = caller.api("/messages", payload)["json"]["id"]
    rotate()
    frozen.advance(61)
    run_schedule("dispatch_due")
    jobs.drain()
    sent = record(message_id)
    assert (sent["status"], sent["attempts"]) == ("sent", 1)
    # Refused once with the old token, then taken with the new one: no attempt was spent.
    assert [r.status for r in twilio.requests if r.method == "POST"][-2:] == [401, 201]
    assert [m["body"] for m in twilio.messages] == ["warm", "after rotation"]


def test_an_immediate_send_and_a_call_after_rotation_go_through(caller, twilio, store, rotate):
    warm(caller)
    rotate()
    sent = caller.api("/messages", {"to": TO, "body": "now"})
    assert sent["statusCode"] == 201, sent["json"]
    call = caller.api("/calls", {"to": TO, "twiml": "<Response><Say>hi</Say></Response>"})
    assert call["statusCode"] == 201, call["json"]
    assert len(twilio.calls) == 1


def test_a_lookup_after_rotation_goes_through(caller, twilio, jobs, frozen, rotate):
    warm(caller)
    payload = {"to": TO, "body": "unclear", "send_at": _iso(frozen.now + 61)}
    message_id = caller.api("/messages", payload)["json"]["id"]
    frozen.advance(61)
    run_schedule("dispatch_due")
    twilio.script_faults("500-after-create")  # Twilio has it; its answer says nothing clear
    jobs.poll_once(replay_failures=True)
    assert record(message_id)["status"] == "sending"
    rotate()
    frozen.advance(60)  # the lookup comes a minute after the unclear answer
    jobs.drain(replay_failures=True)  # the lookup, refused with the old token, then allowed
    found = record(message_id)
    assert (found["status"], found["sid"]) == ("sent", twilio.messages[-1]["sid"])
    assert len(twilio.messages) == 2


def test_refused_credentials_force_at_most_one_read_per_ten_seconds(
    caller, twilio, monkeypatch, rotate
):
    warm(caller)
    now = [0.0]
    monkeypatch.setattr(parameters._forced_credentials, "_clock", lambda: now[0])
    reads = []
    real = parameters.fetch_many
    monkeypatch.setattr(parameters, "fetch_many", lambda names: reads.append(names) or real(names))
    rotate(in_ssm=False)  # rotated in Twilio, not (yet) in SSM: every send is refused
    for second in range(25):
        now[0] = float(second)
        # A number each: refused sends count against the per-destination velocity limit too.
        to = f"+1510555{1300 + second}"
        assert caller.api("/messages", {"to": to, "body": "x"})["statusCode"] == 502
    assert len(reads) == 3  # at 0, 10 and 20 s
    rotate()  # now in SSM too; within ten seconds of the last read the cache still rules
    now[0] = 29.0
    assert caller.api("/messages", {"to": TO, "body": "x"})["statusCode"] == 502
    now[0] = 30.0
    assert caller.api("/messages", {"to": TO, "body": "x"})["statusCode"] == 201


def _iso(seconds: float) -> str:
    from chalicelib.core import clock

    return clock.iso(seconds)
