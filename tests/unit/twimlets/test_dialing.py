"""forward, callme, simulring, findme and whisper: every stage as whole TwiML documents."""

from __future__ import annotations

import pytest

from chalicelib.twimlets import dialing
from chalicelib.twimlets.common import Redirect

from .support import EXECUTE_API, assert_twiml, request

SELF = "https://voice.example.com/twimlets"
HANGUP = "<Response><Hangup/></Response>"
REJECTED = (
    "<Response><Say>Sorry, you are calling from a restricted number. Good bye.</Say></Response>"
)
CALLER = {"From": "+12065550199", "To": "+12065550100", "CallSid": "CA1"}


# forward


def test_forward_example():
    twiml = dialing.forward(
        request(
            "PhoneNumber=%2B12065550142&Timeout=30&FailUrl=https%3A%2F%2Fexample.org%2Fbusy.xml"
        )
    )
    assert_twiml(
        twiml,
        f'<Response><Dial action="{SELF}/forward?Dial=true&amp;FailUrl='
        'https%3A%2F%2Fexample.org%2Fbusy.xml" timeout="30">+12065550142</Dial></Response>',
    )


def test_forward_defaults_caller_id_and_falsy_fail_url():
    assert_twiml(
        dialing.forward(request("PhoneNumber=%2B12065550142&CallerId=&FailUrl=0&Timeout=0")),
        f'<Response><Dial action="{SELF}/forward?Dial=true" timeout="20" callerId="">'
        "+12065550142</Dial></Response>",
    )
    assert_twiml(
        dialing.forward(request("CallerId=%2B15005550006&PhoneNumber=2065550142")),
        f'<Response><Dial action="{SELF}/forward?Dial=true" timeout="20" '
        'callerId="+15005550006">+12065550142</Dial></Response>',
    )


def test_forward_builds_urls_under_any_base():
    twiml = dialing.forward(request("PhoneNumber=%2B12065550142", base=EXECUTE_API))
    assert f'action="{EXECUTE_API}/twimlets/forward?Dial=true"' in twiml


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"DialCallStatus": "busy"}, Redirect("https://example.org/busy.xml")),
        ({"DialCallStatus": "no-answer"}, Redirect("https://example.org/busy.xml")),
        ({"DialCallStatus": "whatever"}, Redirect("https://example.org/busy.xml")),
        ({"DialCallStatus": "completed"}, HANGUP),
        ({"DialStatus": "answered"}, HANGUP),
    ],
)
def test_forward_returning_from_dial(form, expected):
    result = dialing.forward(
        request("Dial=true&FailUrl=https%3A%2F%2Fexample.org%2Fbusy.xml", form)
    )
    if isinstance(expected, Redirect):
        assert result == expected
    else:
        assert_twiml(result, expected)


def test_forward_returning_without_fail_url_hangs_up():
    assert_twiml(dialing.forward(request("Dial=true", {"DialCallStatus": "busy"})), HANGUP)


def test_forward_with_dial_but_no_status_is_stage_one():
    twiml = dialing.forward(request("Dial=&PhoneNumber=%2B12065550142", {"DialCallStatus": ""}))
    assert "<Dial " in twiml


def test_forward_markers_come_from_the_query_only():
    # A body cannot turn a first request into a return from Dial, nor choose the FailUrl.
    twiml = dialing.forward(
        request(
            "PhoneNumber=%2B12065550142", {"Dial": "true", "DialCallStatus": "busy", "FailUrl": "x"}
        )
    )
    assert "<Dial " in twiml


ALLOW = "PhoneNumber=%2B12065550142&AllowedCallers%5B%5D=206-555-0199"


@pytest.mark.parametrize(
    ("query", "caller", "allowed"),
    [
        # The deviation's example: the original rejects this caller.
        (ALLOW, {"From": "+12065550199", "To": "+12065550100"}, True),
        (ALLOW, {"From": "+12065550198"}, False),
        ("AllowedCallers[]=%2B1-303-555-0170", {"From": "+13035550170"}, True),
        ("AllowedCallers[]=303-555-0170", {"From": "+1 (303) 555-0170"}, True),
        ("AllowedCallers[]=13035550170", {"From": "303-555-0170"}, True),
        ("AllowedCallers[]=3035550170", {"From": "", "Caller": "+13035550170"}, True),
        # A scalar is a one-entry list (the original let everyone through).
        ("AllowedCallers=3035550170", {"From": "+13035550199"}, False),
        ("AllowedCallers=3035550170", {"From": "+13035550170"}, True),
        # Only the caller counts, not the called number.
        ("AllowedCallers[]=2065550100", {"From": "+13035550170", "To": "+12065550100"}, False),
        # Entries without digits match nothing, an empty caller never matches.
        ("AllowedCallers[]=abc", {"From": ""}, False),
        ("AllowedCallers[]=abc&AllowedCallers[]=3035550170", {}, False),
        # No truthy entry: no list, everyone is forwarded.
        ("AllowedCallers[]=&AllowedCallers[]=0", {"From": "+13035550170"}, True),
        ("AllowedCallers=", {"From": "+13035550170"}, True),
        ("", {"From": "anonymous"}, True),
        # Non-NANP numbers compare digit for digit.
        ("AllowedCallers[]=%2B44%207700%20900123", {"From": "+447700900123"}, True),
        ("AllowedCallers[]=%2B44%207700%20900123", {"From": "+4407700900123"}, False),
        # Deliberate departures from the original's digit compare: both sides as E.164, exactly.
        ("AllowedCallers[]=%2B51%2005551212", {"From": "+15105551212"}, False),
        ("AllowedCallers[]=510-555-1212", {"From": "+5105551212"}, False),
        ("AllowedCallers[]=0447700900123", {"From": "+447700900123"}, False),  # no country code
        ("AllowedCallers[]=447700900123", {"From": "+447700900123"}, False),
        ("AllowedCallers[]=+447700900123", {"From": "+447700900123"}, True),  # raw "+": a space
        ("AllowedCallers[]=2125550147", {"From": "anonymous", "Caller": "anonymous"}, False),
        ("AllowedCallers[]=2125550147", {"From": "+12125550147x"}, False),
    ],
)
def test_forward_allow_list(query, caller, allowed):
    twiml = dialing.forward(request(f"PhoneNumber=%2B12065550142&{query}", caller))
    if allowed:
        assert "<Dial " in twiml
    else:
        assert_twiml(twiml, REJECTED)


# callme


def test_callme_example():
    twiml = dialing.callme(
        request(
            "PhoneNumber=%2B13125550123&Message=Press%20any%20key%20to%20talk%20to%20a%20customer"
        )
    )
    assert_twiml(
        twiml,
        f'<Response><Dial action="{SELF}/callme?Dial=true" timeout="20">'
        f'<Number url="{SELF}/whisper?Message=Press+any+key+to+talk+to+a+customer">'
        "+13125550123</Number></Dial></Response>",
    )


def test_callme_keeps_a_set_but_empty_fail_url():
    assert_twiml(
        dialing.callme(request("PhoneNumber=%2B13125550123&FailUrl=&Timeout=9")),
        f'<Response><Dial action="{SELF}/callme?Dial=true&amp;FailUrl=" timeout="9">'
        f'<Number url="{SELF}/whisper?Message=">+13125550123</Number></Dial></Response>',
    )


def test_callme_returning_from_dial():
    query = "Dial=true&FailUrl=https%3A%2F%2Fexample.org%2Fvm"
    assert dialing.callme(request(query, {"DialCallStatus": "no-answer"})) == Redirect(
        "https://example.org/vm"
    )
    assert_twiml(dialing.callme(request(query, {"DialCallStatus": "completed"})), HANGUP)
    assert_twiml(dialing.callme(request("Dial=true&FailUrl=", {"DialStatus": "busy"})), HANGUP)


# simulring


def test_simulring_example_keeps_the_order_given():
    twiml = dialing.simulring(
        request(
            "PhoneNumbers%5B%5D=%2B13125550188&PhoneNumbers%5B%5D=0"
            "&PhoneNumbers%5B%5D=%2B13125550111&Message=Sales%20call"
        )
    )
    number = f'<Number url="{SELF}/whisper?Message=Sales+call">'
    assert_twiml(
        twiml,
        f'<Response><Dial action="{SELF}/simulring?Dial=true&amp;FailUrl=" timeout="20">'
        f"{number}+13125550188</Number>{number}+13125550111</Number></Dial></Response>",
    )


def test_simulring_scalar_and_empty_lists():
    assert_twiml(
        dialing.simulring(request("PhoneNumbers=%2B1555&Timeout=15&FailUrl=https://x.org/f")),
        f'<Response><Dial action="{SELF}/simulring?Dial=true&amp;FailUrl=https%3A%2F%2Fx.org'
        f'%2Ff" timeout="15"><Number url="{SELF}/whisper?Message=">+1555</Number></Dial>'
        "</Response>",
    )
    assert_twiml(
        dialing.simulring(request("PhoneNumbers[]=&PhoneNumbers[]=0")),
        f'<Response><Dial action="{SELF}/simulring?Dial=true&amp;FailUrl=" timeout="20"/>'
        "</Response>",
    )


def test_simulring_returning_from_dial():
    query = "Dial=true&FailUrl=https%3A%2F%2Fexample.org%2Fvm"
    assert dialing.simulring(request(query, {"DialCallStatus": "busy"})) == Redirect(
        "https://example.org/vm"
    )
    assert_twiml(dialing.simulring(request(query, {"DialCallStatus": "completed"})), HANGUP)


# findme

FINDME = (
    "PhoneNumbers%5B%5D=%2B16175550101&PhoneNumbers%5B%5D=%2B16175550102"
    "&PhoneNumbers%5B%5D=%2B16175550103&Timeout=25&Message=Call%20for%20Acme"
    "&FailUrl=https%3A%2F%2Fexample.org%2Fvm"
)
FINDME_ACTION = (
    f"{SELF}/findme?Dial=true&amp;FailUrl=https%3A%2F%2Fexample.org%2Fvm&amp;Timeout=25"
    "&amp;Message=Call+for+Acme"
)
FINDME_WHISPER = f'<Number url="{SELF}/whisper?Message=Call+for+Acme&amp;HumanCheck=1">'


def test_findme_example_and_every_next_step():
    assert_twiml(
        dialing.findme(request(FINDME)),
        f'<Response><Dial action="{FINDME_ACTION}&amp;PhoneNumbers%5B%5D=%2B16175550102'
        f'&amp;PhoneNumbers%5B%5D=%2B16175550103" timeout="25">{FINDME_WHISPER}'
        "+16175550101</Number></Dial></Response>",
    )
    second = (
        "Dial=true&FailUrl=https%3A%2F%2Fexample.org%2Fvm&Timeout=25&Message=Call+for+Acme"
        "&PhoneNumbers%5B%5D=%2B16175550102&PhoneNumbers%5B%5D=%2B16175550103"
    )
    assert_twiml(
        dialing.findme(request(second, {"DialCallStatus": "no-answer"})),
        f'<Response><Dial action="{FINDME_ACTION}&amp;PhoneNumbers%5B%5D=%2B16175550103"'
        f' timeout="25">{FINDME_WHISPER}+16175550102</Number></Dial></Response>',
    )
    third = second.replace("&PhoneNumbers%5B%5D=%2B16175550102", "")
    assert_twiml(
        dialing.findme(request(third, {"DialCallStatus": "no-answer"})),
        f'<Response><Dial action="{FINDME_ACTION}" timeout="25">{FINDME_WHISPER}'
        "+16175550103</Number></Dial></Response>",
    )
    fourth = third.replace("&PhoneNumbers%5B%5D=%2B16175550103", "")
    assert dialing.findme(request(fourth, {"DialCallStatus": "no-answer"})) == Redirect(
        "https://example.org/vm"
    )
    for query in (FINDME, second, third, fourth):
        answered = dialing.findme(request(query + "&Dial=true", {"DialCallStatus": "completed"}))
        assert_twiml(answered, HANGUP)
    legacy = dialing.findme(request(second, {"DialStatus": "answered"}))
    assert_twiml(legacy, HANGUP)


def test_findme_defaults_and_empty_markers():
    assert_twiml(
        dialing.findme(request("PhoneNumbers=%2B1555")),
        f'<Response><Dial action="{SELF}/findme?Dial=true&amp;FailUrl=&amp;Timeout=&amp;Message="'
        f' timeout="60"><Number url="{SELF}/whisper?Message=&amp;HumanCheck=1">+1555</Number>'
        "</Dial></Response>",
    )
    assert_twiml(dialing.findme(request("Dial=true", {"DialCallStatus": "busy"})), HANGUP)
    assert_twiml(dialing.findme(request("")), HANGUP)


def test_findme_keeps_the_first_ten_numbers():
    # Written as 10-digit NANP numbers: dialled, and carried onwards, as E.164.
    numbers = "&".join(f"PhoneNumbers[]=617555{n:04d}" for n in range(101, 113))
    twiml = dialing.findme(request(numbers))
    assert ">+16175550101</Number>" in twiml
    carried = [f"PhoneNumbers%5B%5D=%2B16175550{n}" for n in range(102, 111)]
    assert all(number in twiml for number in carried)
    assert "0111" not in twiml
    assert "0112" not in twiml


# whisper


def test_whisper_example_and_digits():
    assert_twiml(
        dialing.whisper(request("HumanCheck=1", {"From": "+447700900123"})),
        '<Response><Gather numDigits="1"><Say>You are receiving a call from +. 4. 4. 7. 7. 0. '
        "0. 9. 0. 0. 1. 2. 3. .  Press any key to accept.</Say></Gather><Hangup/></Response>",
    )
    assert_twiml(dialing.whisper(request("HumanCheck=1", {"Digits": "3"})), "<Response/>")
    assert_twiml(dialing.whisper(request("HumanCheck=1", {"Digits": ""})), HANGUP)


def test_whisper_messages_and_fallbacks():
    assert_twiml(
        dialing.whisper(request("Message=Call+for+Acme")),
        '<Response><Gather numDigits="1"><Say>Call for Acme</Say></Gather></Response>',
    )
    assert_twiml(
        dialing.whisper(request("Message=https://x.org/a.mp3&HumanCheck=")),
        '<Response><Gather numDigits="1"><Play>https://x.org/a.mp3</Play></Gather><Hangup/>'
        "</Response>",
    )
    assert_twiml(
        dialing.whisper(request("Message=%20%20", {"From": "", "Caller": "+1 555"})),
        '<Response><Gather numDigits="1"><Say>You are receiving a call from +. 1.  5. 5. 5. . '
        " Press any key to accept.</Say></Gather></Response>",
    )
    assert_twiml(
        dialing.whisper(request("")),
        '<Response><Gather numDigits="1"><Say>You are receiving a call from .  Press any key '
        "to accept.</Say></Gather></Response>",
    )
