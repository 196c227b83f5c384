"""Erasing one person's data through POST /erasures, against the moto server and the worker."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.api import erasure
from chalicelib.core import clock
from devkit import demo, resources

PERSON = "+15105550188"
OTHER = "+15105550199"


def items_naming(number: str) -> list[dict]:
    table = resources.names("dev")["MessagesTable"]
    found = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return [i for i in found if number in str(i)]


def text_in(caller, number: str, sid: str) -> None:
    params = {
        "MessageSid": sid, "AccountSid": demo.ACCOUNT_SID, "From": number, "To": demo.NUMBER,
        "Body": f"hello from {number}", "NumMedia": "0",
    }  # fmt: skip
    assert caller.webhook("/sms", params)["statusCode"] == 200


@pytest.fixture
def history(caller, twilio, jobs, frozen):
    """Messages both ways, a call, a scheduled message and an opt-out, for two people."""
    for number in (PERSON, OTHER):
        assert caller.api("/messages", {"to": number, "body": "hi"})["statusCode"] == 201
        assert caller.api("/calls", {"to": number, "say": "hi"})["statusCode"] == 201
    text_in(caller, PERSON, "SM" + "a" * 32)
    text_in(caller, OTHER, "SM" + "b" * 32)
    text_in(caller, PERSON, "SM" + "c" * 32)  # then STOP
    later = {"to": PERSON, "body": "reminder", "send_at": clock.iso(frozen.now + 3600)}
    scheduled = caller.api("/messages", later)["json"]["id"]
    stop = {"MessageSid": "SM" + "d" * 32, "AccountSid": demo.ACCOUNT_SID, "From": PERSON,
            "To": demo.NUMBER, "Body": "STOP", "NumMedia": "0"}  # fmt: skip
    assert caller.webhook("/sms", stop)["statusCode"] == 200
    return scheduled


def test_an_erasure_deletes_the_persons_data_keeps_the_opt_out_and_nobody_elses(
    caller, jobs, frozen, history, twilio
):
    before_other = len(items_naming(OTHER))
    started = caller.api("/erasures", {"number": PERSON})
    assert started["statusCode"] == 202
    erasure_id = started["json"]["id"]
    assert started["json"]["status"] == "running"
    jobs.drain()
    done = caller.api(f"/erasures/{erasure_id}", method="GET")["json"]
    assert done["status"] == "done" and done["deleted"] >= 5
    assert done["kept"] == {"opt_out": 1, "sending_now": 0}
    left = items_naming(PERSON)
    assert [i["pk"]["S"] for i in left] == [f"optout#{PERSON}"]  # the STOP stays honoured
    assert len(items_naming(OTHER)) == before_other
    # The scheduled message is gone: it is never sent.
    frozen.advance(3700)
    from tests.functional.conftest import run_schedule

    run_schedule("dispatch_due")
    jobs.drain()
    assert [m["to"] for m in twilio.messages].count(PERSON) == 1  # only the first, before


def test_a_big_table_is_erased_over_several_runs(caller, jobs, history, monkeypatch):
    monkeypatch.setattr(erasure, "PAGE", 2)
    monkeypatch.setattr(erasure, "PAGES_PER_RUN", 1)
    erasure_id = caller.api("/erasures", {"number": PERSON})["json"]["id"]
    handled = jobs.drain()
    assert handled > 3  # the job re-queued itself
    done = caller.api(f"/erasures/{erasure_id}", method="GET")["json"]
    assert done["status"] == "done"
    assert [i["pk"]["S"] for i in items_naming(PERSON)] == [f"optout#{PERSON}"]


def test_a_throttled_scan_is_retried_and_the_erasure_finishes(caller, jobs, history, aws_faults):
    erasure_id = caller.api("/erasures", {"number": PERSON})["json"]["id"]
    aws_faults.script("dynamodb:Scan", ["throttle", "500"])
    jobs.drain(replay_failures=True)
    assert caller.api(f"/erasures/{erasure_id}", method="GET")["json"]["status"] == "done"
    assert [i["pk"]["S"] for i in items_naming(PERSON)] == [f"optout#{PERSON}"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "number"), ({"number": "510 555 0188"}, "number"), ({"number": PERSON, "x": 1}, "x")],
)
def test_bad_input_names_the_field(caller, payload, field):
    response = caller.api("/erasures", payload)
    assert (response["statusCode"], response["json"]["error"]["field"]) == (400, field)


def test_an_unknown_erasure_is_a_404(caller):
    assert caller.api("/erasures/nope", method="GET")["statusCode"] == 404
