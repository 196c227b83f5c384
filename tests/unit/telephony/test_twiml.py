"""TwiML builders: whole documents, escaped markup, no characters XML forbids."""

import xml.etree.ElementTree as ET

import pytest

from chalicelib.telephony import twiml

HEADER = '<?xml version="1.0" encoding="UTF-8"?>'


def test_say():
    assert twiml.say("Hello World") == f"{HEADER}<Response><Say>Hello World</Say></Response>"


def test_message_reply_and_empty_reply():
    assert twiml.message_reply("Thanks!") == (
        f"{HEADER}<Response><Message>Thanks!</Message></Response>"
    )
    assert twiml.message_reply(None) == f"{HEADER}<Response />"
    assert twiml.message_reply("") == f"{HEADER}<Response />"


@pytest.mark.parametrize(
    "text",
    [
        "</Say><Dial>+19005550100</Dial><Say>",
        "a & b < c > d \" ' ]]>",
        "bell\x07 null\x00 esc\x1b vt\x0b ff\x0c",
        "lone surrogate \udc80 and \ufffe\uffff",
        "emoji 📞 and accents é, tab\tnewline\n",
    ],
)
def test_caller_text_cannot_break_or_inject_xml(text):
    document = twiml.say(text)
    root = ET.fromstring(document.encode("utf-8"))
    assert [child.tag for child in root] == ["Say"]
    assert root[0].text == twiml.clean_text(text)


def test_clean_text_keeps_allowed_whitespace():
    assert twiml.clean_text("a\tb\nc\rd\x01e") == "a\tb\nc\rde"
