"""message, echo and menu: every stage as whole TwiML documents."""

from __future__ import annotations

import pytest

from chalicelib.twimlets import menu, simple
from chalicelib.twimlets.common import Redirect

from .support import assert_twiml, request

# message


def test_message_example():
    twiml = simple.message(
        request(
            "Message%5B0%5D=https%3A%2F%2Fcdn.example.net%2Fclosed.wav"
            "&Message%5B1%5D=Our%20office%20reopens%20at%209."
        )
    )
    assert_twiml(
        twiml,
        "<Response><Play>https://cdn.example.net/closed.wav</Play>"
        "<Say>Our office reopens at 9.</Say></Response>",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Message=Hello+World", "<Response><Say>Hello World</Say></Response>"),
        ("", "<Response/>"),
        ("Message[]=%20&Message[]=", "<Response/>"),
        ("Message[]=0&Message[]=%20", "<Response><Say>0</Say></Response>"),  # "0" is spoken
        (
            "Message[5]=later&Message[1]=first",
            "<Response><Say>later</Say><Say>first</Say></Response>",
        ),
        ("message=lower+case+is+another+name", "<Response/>"),
        (
            "Message=Tom+%26amp%3B+Jerry+%3C%2FSay%3E",
            "<Response><Say>Tom &amp; Jerry &lt;/Say&gt;</Say></Response>",
        ),
        ("Message[a][b]=nested", "<Response/>"),
    ],
)
def test_message(query, expected):
    assert_twiml(simple.message(request(query)), expected)


def test_message_reads_the_query_only():
    assert_twiml(simple.message(request("", {"Message": "from the body"})), "<Response/>")


# echo


def test_echo_returns_the_parameter_byte_for_byte():
    assert (
        simple.echo(request("Twiml=%3CResponse%3E%3CReject%2F%3E%3C%2FResponse%3E"))
        == "<Response><Reject/></Response>"
    )
    assert simple.echo(request("Twiml=not+xml+%26+not+escaped")) == "not xml & not escaped"
    assert simple.echo(request("")) == ""
    assert simple.echo(request("", {"Twiml": "<Response/>"})) == ""


# menu

MENU = (
    "Message=For%20sales%20press%201.%20For%20support%20press%202."
    "&Options%5B1%5D=https%3A%2F%2Fexample.org%2Fsales"
    "&Options%5B2%5D=https%3A%2F%2Fexample.org%2Fsupport"
)
MENU_TWIML = (
    '<Gather numDigits="1"><Say>For sales press 1. For support press 2.</Say></Gather><Redirect/>'
)
APOLOGY = "<Say>I'm sorry, that wasn't a valid option.</Say>"


def test_menu_example():
    assert_twiml(menu.menu(request(MENU)), f"<Response>{MENU_TWIML}</Response>")
    assert menu.menu(request(MENU, {"Digits": "2"})) == Redirect("https://example.org/support")
    assert_twiml(
        menu.menu(request(MENU, {"Digits": "7"})), f"<Response>{APOLOGY}{MENU_TWIML}</Response>"
    )
    assert_twiml(menu.menu(request(MENU, {"Digits": ""})), f"<Response>{MENU_TWIML}</Response>")


@pytest.mark.parametrize(
    ("query", "digits", "expected"),
    [
        ("Options[123]=&Options[1]=x", "", '<Gather numDigits="1"/><Redirect/>'),
        ("Options[123]=https://x&Options[1]=x", "", '<Gather numDigits="3"/><Redirect/>'),
        ("Options[*]=https://x.org/star", "*", Redirect("https://x.org/star")),
        ("Options=https://x.org/zero", "0", Redirect("https://x.org/zero")),
        ("Options[1]=0", "1", f'{APOLOGY}<Gather numDigits="1"/><Redirect/>'),
        ("Options[01]=https://x.org/a", "1", f'{APOLOGY}<Gather numDigits="2"/><Redirect/>'),
        ("Message=%20%20", "", '<Gather numDigits="1"><Say>  </Say></Gather><Redirect/>'),
        ("Message=0", "", '<Gather numDigits="1"><Say>0</Say></Gather><Redirect/>'),
        (
            "Message=http://x.org/menu.mp3",
            "",
            '<Gather numDigits="1"><Play>http://x.org/menu.mp3</Play></Gather><Redirect/>',
        ),
        ("", "5", f'{APOLOGY}<Gather numDigits="1"/><Redirect/>'),
    ],
)
def test_menu(query, digits, expected):
    result = menu.menu(request(query, {"Digits": digits}))
    if isinstance(expected, Redirect):
        assert result == expected
    else:
        assert_twiml(result, f"<Response>{expected}</Response>")


def test_menu_options_come_from_the_query_only():
    result = menu.menu(request("", {"Digits": "1", "Options[1]": "https://evil.example"}))
    assert_twiml(result, f'<Response>{APOLOGY}<Gather numDigits="1"/><Redirect/></Response>')
