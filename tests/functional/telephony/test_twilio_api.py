"""chalicelib.telephony.twilio_api calls Twilio as the twilio library's generated resources do.

Each pair below makes the same call once through the generated classes (`client.messages.create`
and friends, which the application no longer imports) and once through TwilioRest, against the
local Twilio over HTTP, and compares the requests Twilio received (method, path, every query and
form parameter, a repeated one's values in order) and what each answer says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from twilio.rest import Client

from chalicelib.telephony import twilio_rest
from devkit import demo
from devkit.fake_twilio import FakeTwilio

ROOT = Path(__file__).resolve().parents[3]
TO = "+14155550123"
OTHER = "+14155550199"
SERVICE = "MG" + "0" * 31 + "1"


@pytest.fixture(scope="module")
def own_twilio() -> Any:
    # Its own local Twilio: the numbers these tests add must not become other tests' senders.
    with FakeTwilio(accounts={demo.ACCOUNT_SID: demo.AUTH_TOKEN}) as fake:
        fake.numbers.add(demo.ACCOUNT_SID, demo.NUMBER)
        for number in ("+14155550001", "+14155550002", "+14155550003"):
            fake.numbers.add(demo.ACCOUNT_SID, number)
        fake.numbers.verify(demo.ACCOUNT_SID, OTHER)
        yield fake


@pytest.fixture
def twilio(own_twilio: FakeTwilio) -> Any:
    own_twilio.reset()
    own_twilio.numbers.fail_lists = None
    return own_twilio


@pytest.fixture
def generated(twilio: FakeTwilio) -> Any:
    client = Client(demo.ACCOUNT_SID, demo.AUTH_TOKEN)
    client.api.base_url = twilio.url
    client.region = client.edge = None
    return client


@pytest.fixture
def ours(twilio: FakeTwilio) -> twilio_rest.TwilioRest:
    twilio_rest._client_cache.clear()
    credentials = twilio_rest.Credentials(demo.ACCOUNT_SID, demo.ACCOUNT_SID, demo.AUTH_TOKEN)
    return twilio_rest.get_twilio(credentials, base_url=twilio.url)


def _requests_of(twilio: FakeTwilio, action: Any) -> tuple[list[tuple[Any, ...]], Any]:
    before = len(twilio.requests)
    answer = action()
    # By name, keeping a repeated parameter's values in order (MediaUrl): the order of different
    # names in a form carries no meaning.
    made = [
        (r.method, r.path, sorted(r.params, key=lambda pair: pair[0]), r.status)
        for r in twilio.requests[before:]
    ]
    return made, answer


def _same_requests(twilio: FakeTwilio, theirs: Any, ours: Any) -> tuple[Any, Any]:
    their_requests, their_answer = _requests_of(twilio, theirs)
    our_requests, our_answer = _requests_of(twilio, ours)
    assert our_requests == their_requests
    assert our_requests  # each made at least one request
    return their_answer, our_answer


@pytest.mark.parametrize(
    "options",
    [
        {"from_": demo.NUMBER, "body": "Your table is ready"},
        {
            "from_": demo.NUMBER,
            "body": "Look",
            "media_url": ["https://example.com/a.png", "https://example.com/b.png"],
            "status_callback": "https://example.com/status",
        },
        {"messaging_service_sid": SERVICE, "body": "From the service"},
    ],
)
def test_a_message_is_created_with_the_generated_classes_request(twilio, generated, ours, options):
    sender = options.get("from_") or options["messaging_service_sid"]
    theirs, answer = _same_requests(
        twilio,
        lambda: generated.messages.create(to=TO, **options),
        lambda: ours.send_message(
            to=TO,
            body=options["body"],
            sender=sender,
            media_urls=options.get("media_url"),
            status_callback=options.get("status_callback"),
        ),
    )
    assert answer["sid"].startswith(("SM", "MM")) and answer["sid"] != theirs.sid
    assert (answer["status"], answer["to"]) == (theirs.status, theirs.to)
    assert answer["from"] == (theirs.from_ or theirs.messaging_service_sid) == sender


@pytest.mark.parametrize(
    "options",
    [
        {"url": "https://example.com/voice", "status_callback": "https://example.com/status"},
        {"twiml": "<Response><Say>Hello</Say></Response>"},
    ],
)
def test_a_call_is_placed_with_the_generated_classes_request(twilio, generated, ours, options):
    extra = {}
    if "status_callback" in options:
        extra["status_callback_event"] = ["initiated", "ringing", "answered", "completed"]
    theirs, answer = _same_requests(
        twilio,
        lambda: generated.calls.create(to=TO, from_=demo.NUMBER, **options, **extra),
        lambda: ours.place_call(to=TO, sender=demo.NUMBER, **options),
    )
    assert answer["sid"].startswith("CA")
    assert (answer["status"], answer["to"], answer["from"]) == (
        theirs.status,
        theirs.to,
        theirs._from,  # twilio 9.13 keeps a call's "from" only as _from
    )


def test_finding_a_message_reads_the_list_as_the_generated_classes_do(twilio, generated, ours):
    since = time.time()
    for text in ("first", "second", "third"):
        generated.messages.create(to=TO, from_=demo.NUMBER, body=text)
    generated.messages.create(to=OTHER, from_=demo.NUMBER, body="second")
    listed, found = _same_requests(
        twilio,
        lambda: generated.messages.list(to=TO, from_=demo.NUMBER, limit=100, page_size=50),
        lambda: ours.find_message(to=TO, sender=demo.NUMBER, body="second", since=since),
    )
    second = next(m for m in listed if m.body == "second")
    assert found == {
        "sid": second.sid,
        "status": second.status,
        "error_code": second.error_code,
        "error_message": second.error_message,
    }
    # A record older than since (with clocks' skew) stops the search.
    assert ours.find_message(to=TO, sender=demo.NUMBER, body="second", since=since + 600) is None
    taken = {second.sid}
    assert (
        ours.find_message(
            to=TO, sender=demo.NUMBER, body="second", since=since, taken=taken.__contains__
        )
        is None
    )


def test_a_list_longer_than_a_page_is_read_page_after_page(twilio, ours):
    # Pages of one record: the generated stream() follows next_page_uri; ours must too.
    api = ours._api  # the Account TwilioRest calls through
    all_numbers = api.list("IncomingPhoneNumbers", {}, page_size=1000)
    by_one = api.list("IncomingPhoneNumbers", {}, page_size=1)
    assert len(by_one) == len(all_numbers) >= 4
    assert [n["phone_number"] for n in by_one] == [n["phone_number"] for n in all_numbers]
    assert len(api.list("IncomingPhoneNumbers", {}, limit=2, page_size=1)) == 2


def test_finding_a_call_and_a_price_and_the_senders(twilio, generated, ours):
    since = time.time()
    placed = generated.calls.create(to=TO, from_=demo.NUMBER, url="https://example.com/voice")
    calls, found = _same_requests(
        twilio,
        lambda: generated.calls.list(to=TO, from_=demo.NUMBER, limit=20),
        lambda: ours.find_call(to=TO, sender=demo.NUMBER, since=since),
    )
    assert found == {"sid": placed.sid, "status": calls[0].status}
    message = generated.messages.create(to=TO, from_=demo.NUMBER, body="priced")
    for sid, resource in ((message.sid, generated.messages), (placed.sid, generated.calls)):
        fetched, price = _same_requests(
            twilio, lambda r=resource, s=sid: r(s).fetch(), lambda s=sid: ours.fetch_price(s)
        )
        assert price == (fetched.price, fetched.price_unit)
    their_requests, _ = _requests_of(
        twilio,
        lambda: (
            generated.incoming_phone_numbers.list(page_size=1000),
            generated.outgoing_caller_ids.list(page_size=1000),
        ),
    )
    our_requests, (numbers, caller_ids) = _requests_of(twilio, ours.owned_senders)
    assert our_requests == their_requests
    assert demo.NUMBER in numbers and caller_ids == {OTHER}


def test_twilios_refusal_and_a_failed_page_surface_as_through_the_generated_classes(twilio, ours):
    with pytest.raises(twilio_rest.TwilioRequestError) as refused:
        ours.send_message(to="not-a-number", body="x", sender=demo.NUMBER)
    assert (refused.value.status, refused.value.code) == (400, 21211)
    twilio.numbers.fail_lists = 503
    with pytest.raises(twilio_rest.TwilioUnavailableError) as failed:
        ours.owned_senders()
    assert failed.value.status == 503


PROBE = """
import json, sys
from chalicelib.telephony import twilio_rest
credentials = twilio_rest.Credentials(*sys.argv[2:5])
rest = twilio_rest.get_twilio(credentials, base_url=sys.argv[1])
sent = rest.send_message(to="+14155550123", body="probe", sender=sys.argv[5])
rest.place_call(to="+14155550123", sender=sys.argv[5], twiml="<Response/>")
rest.find_message(to="+14155550123", sender=sys.argv[5], body="probe", since=0)
rest.find_call(to="+14155550123", sender=sys.argv[5], since=0)
rest.fetch_price(sent["sid"])
rest.owned_senders()
print(json.dumps(sorted(m for m in sys.modules if m.startswith("twilio.rest."))))
"""


def test_no_call_imports_the_generated_resources(twilio):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            twilio.url,
            demo.ACCOUNT_SID,
            demo.ACCOUNT_SID,
            demo.AUTH_TOKEN,
            demo.NUMBER,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr[-3000:]
    assert json.loads(found.stdout.strip().splitlines()[-1]) == []
