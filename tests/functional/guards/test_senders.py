"""Senders the account owns, against the local Twilio's IncomingPhoneNumbers and
OutgoingCallerIds over HTTP (the real twilio client) and the moto server."""

from __future__ import annotations

import pytest

from chalicelib.guards import senders
from devkit import demo

TO = "+15105551212"
SERVICE = "MG" + "a" * 32
LISTED = "+15105550142"  # a number the account buys during a test
CALLER_ID = "+15105550177"  # the owner's own phone, verified as a caller ID


@pytest.fixture
def later(monkeypatch):
    """Move the guard's clock past its refresh interval."""
    now = [1000.0]
    monkeypatch.setattr(senders, "_clock", lambda: now[0])

    def advance(seconds: float = senders.REFRESH_EVERY + 1) -> None:
        now[0] += seconds

    return advance


@pytest.fixture
def numbers(twilio):
    """The local Twilio's number book, put back after the test (it lives for the session)."""
    book = twilio.numbers
    saved = (list(book._numbers), list(book._caller_ids), book.fail_lists)
    yield book
    book._numbers[:], book._caller_ids[:], book.fail_lists = saved


def lists(twilio) -> int:
    paths = ("IncomingPhoneNumbers.json", "OutgoingCallerIds.json")
    return sum(1 for r in twilio.requests if r.method == "GET" and r.path.endswith(paths))


def refused(response) -> tuple[int, str | None, str | None]:
    error = response["json"]["error"]
    return response["statusCode"], error.get("field"), error.get("reason")


def test_a_number_of_the_account_sends_and_a_stranger_is_refused(caller, twilio, numbers):
    assert (
        caller.api("/messages", {"to": TO, "from": demo.NUMBER, "body": "a"})["statusCode"] == 201
    )
    response = caller.api("/messages", {"to": TO, "from": "+15105559999", "body": "b"})
    assert refused(response) == (400, "from", "sender_not_allowed")
    assert "+*******9999" in response["json"]["error"]["message"]
    assert [m["from"] for m in twilio.messages] == [demo.NUMBER]
    call = caller.api("/calls", {"to": TO, "from": "+15105559999"})
    assert refused(call) == (400, "from", "sender_not_allowed")
    assert twilio.calls == []


def test_a_caller_id_places_calls_but_sends_no_messages(caller, twilio, numbers, later):
    numbers.verify(demo.ACCOUNT_SID, CALLER_ID)
    assert caller.api("/calls", {"to": TO, "from": CALLER_ID})["statusCode"] == 201
    message = caller.api("/messages", {"to": TO, "from": CALLER_ID, "body": "x"})
    assert refused(message) == (400, "from", "sender_not_allowed")


def test_a_messaging_service_sends_and_cannot_call(caller, twilio, numbers):
    assert caller.api("/messages", {"to": TO, "from": SERVICE, "body": "x"})["statusCode"] == 201
    assert refused(caller.api("/calls", {"to": TO, "from": SERVICE}))[:2] == (400, "from")


def test_alphanumeric_senders_only_when_listed(caller, ssm, twilio, numbers):
    response = caller.api("/messages", {"to": TO, "from": "Acme", "body": "x"})
    assert refused(response) == (400, "from", "sender_not_allowed")
    assert senders.ALPHANUMERIC_PARAMETER in response["json"]["error"]["message"]
    demo.put_parameters(
        ssm, demo.SSM_PATH, {senders.ALPHANUMERIC_PARAMETER: ("Shop, ACME", "String")}
    )
    from chalicelib.aws import parameters

    parameters.reset()
    assert caller.api("/messages", {"to": TO, "from": "Acme", "body": "x"})["statusCode"] == 201
    assert refused(caller.api("/calls", {"to": TO, "from": "Acme"}))[:2] == (400, "from")
    too_long = caller.api("/messages", {"to": TO, "from": "Acme Widgets", "body": "x"})
    assert refused(too_long)[:2] == (400, "from")


def test_a_number_bought_after_the_list_was_read_works_at_once(caller, twilio, numbers, later):
    assert caller.api("/messages", {"to": TO, "body": "a"})["statusCode"] == 201
    read = lists(twilio)
    numbers.add(demo.ACCOUNT_SID, LISTED)
    later()
    assert caller.api("/messages", {"to": TO, "from": LISTED, "body": "b"})["statusCode"] == 201
    assert lists(twilio) == read + 2  # one refresh: numbers and caller IDs
    # Known now: no more listing within the cache's life.
    assert caller.api("/messages", {"to": TO, "from": LISTED, "body": "c"})["statusCode"] == 201
    assert lists(twilio) == read + 2


def test_strangers_cannot_make_every_request_list_the_numbers(caller, twilio, numbers, later):
    assert caller.api("/messages", {"to": TO, "body": "a"})["statusCode"] == 201
    later()
    read = lists(twilio)
    for n in range(5):
        stranger = f"+1510555{9900 + n}"
        response = caller.api("/messages", {"to": TO, "from": stranger, "body": "x"})
        assert refused(response)[0] == 400
    assert lists(twilio) == read + 2  # one refresh for the first miss, none for the rest


@pytest.mark.parametrize("status", [500, 503, 429])
def test_twilio_unable_to_list_fails_the_send_and_writes_nothing(caller, twilio, numbers, status):
    numbers.fail_lists = status
    headers = {"Idempotency-Key": f"senders-{status}"}
    response = caller.api("/messages", {"to": TO, "body": "x"}, headers=headers)
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) > 0
    assert twilio.messages == []
    numbers.fail_lists = None
    again = caller.api("/messages", {"to": TO, "body": "x"}, headers=headers)
    assert again["statusCode"] == 201  # the key was left free
    assert len(twilio.messages) == 1


def test_a_default_sender_the_account_does_not_own_is_named(caller, ssm, twilio, numbers):
    demo.put_parameters(ssm, demo.SSM_PATH, {senders.DEFAULT_FROM: ("+15105550000", "String")})
    from chalicelib.aws import parameters

    parameters.reset()
    response = caller.api("/messages", {"to": TO, "body": "x"})
    assert response["statusCode"] == 500
    error = response["json"]["error"]
    assert error["parameter"] == "twilio/default_from"
    assert (
        "twilio/default_from (+*******0000) is not a number of this Twilio account"
        in (error["message"])
    )
    assert twilio.messages == []
