"""Pacing slots further ahead than SQS can delay (900 s): the worker holds a send that arrives
before its slot. The app's clock and SQS's move together; nothing sleeps."""

from __future__ import annotations

import pytest

from chalicelib.core import settings
from chalicelib.messaging import deps, messages, pacing

TO = "+15105551212"


@pytest.fixture
def later(frozen):
    """Let time pass for the app and for SQS alike (frozen.advance moves both)."""
    return frozen.advance


def test_a_send_that_arrives_before_its_slot_waits_for_it(
    caller, twilio, jobs, frozen, later, monkeypatch
):
    monkeypatch.setenv("SWITCHBOARD_SEND_RATE", "1")
    settings.reset()
    table = deps.table()
    pacing.reserve(table, 1000, 1.0, frozen.now)  # 1,000 s of sending already reserved
    response = caller.api("/messages", {"to": TO, "body": "at my slot"})
    assert (response["statusCode"], response["json"]["status"]) == (202, "queued")
    message_id = response["json"]["id"]
    later(900)  # SQS's longest delay: the job comes back 100 s before its slot
    jobs.drain()
    early = table.get(messages.key(message_id))
    assert (early["status"], early["attempts"]) == ("queued", 0)
    assert twilio.messages == []
    later(99)
    assert jobs.drain() == 0  # held until the slot, not before
    later(1)
    jobs.drain()
    sent = table.get(messages.key(message_id))
    assert (sent["status"], sent["attempts"]) == ("sent", 1)
    assert len(twilio.messages) == 1
