"""The numbers in a call's TwiML and in URLs to this app's twimlets, checked by the policy."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from chalicelib.guards.call_targets import (
    INVALID_TWIML,
    MAX_URLS,
    UNCHECKED,
    twiml_refusal,
    url_refusal,
)
from chalicelib.guards.destinations import BLOCKED, NOT_ALLOWED, NOT_E164, Policy

BASE = "https://abc123.execute-api.us-east-1.amazonaws.com/api"
POLICY = Policy.default()


def twiml_reason(document: str) -> str | None:
    refusal = twiml_refusal(POLICY, document)
    return refusal.reason if refusal else None


def url_reason(url: str) -> str | None:
    refusal = url_refusal(POLICY, url)
    return refusal.reason if refusal else None


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("<Response><Say>Hi</Say></Response>", None),
        ("<Response><Dial>+15105551212</Dial></Response>", None),
        ("<Response><Dial> 510-555-1212 </Dial></Response>", None),
        ("<Response><Dial>+18765550123</Dial></Response>", BLOCKED),
        ("<Response><Dial>+442071838750</Dial></Response>", NOT_ALLOWED),
        ("<Response><Dial>011442071838750</Dial></Response>", NOT_E164),
        (
            "<Response><Dial><Number>+15105551212</Number><Number>+19005550000</Number></Dial>"
            "</Response>",
            BLOCKED,
        ),
        ("<Response><Dial><Number>&#43;18095550123</Number></Dial></Response>", BLOCKED),
        ("<Response><Dial><Client>alice</Client></Dial></Response>", None),
        ("<Response><Dial><Conference>room</Conference></Dial></Response>", None),
        ("<Response><Dial><Sip>sip:+442071838750@example.com</Sip></Dial></Response>", UNCHECKED),
        ('<Response><Sms to="+18765550123">hi</Sms></Response>', BLOCKED),
        ('<Response><Sms to="+15105551212">hi</Sms></Response>', None),
        ("<Response><Sms>to the caller</Sms></Response>", None),
        ('<Response><Message to="+442071838750">hi</Message></Response>', NOT_ALLOWED),
        ("<Response><!-- a comment --><Say>Hi</Say></Response>", None),
        ("<Response><Dial>", INVALID_TWIML),
        ("not xml", INVALID_TWIML),
        (
            '<!DOCTYPE r [<!ENTITY n "+18765550123">]><Response><Dial>&n;</Dial></Response>',
            INVALID_TWIML,
        ),
        # URLs to this app's twimlets, anywhere in the document.
        (
            f"<Response><Redirect>{BASE}/twimlets/forward?PhoneNumber=%2B18765550123</Redirect>"
            "</Response>",
            BLOCKED,
        ),
        (
            f'<Response><Gather action="{BASE}/twimlets/forward?PhoneNumber=%2B15105551212"/>'
            "</Response>",
            None,
        ),
        (f"<Response><Redirect>{BASE}/twimlets/message?Message=hi</Redirect></Response>", None),
        (
            "<Response><Redirect>https://example.org/forward?PhoneNumber=%2B18765550123"
            "</Redirect></Response>",
            None,
        ),
    ],
)
def test_twiml(document, expected):
    assert twiml_reason(document) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{BASE}/voice", None),
        ("https://example.org/twiml.xml?PhoneNumber=%2B18765550123", None),
        (f"{BASE}/twimlets/forward?PhoneNumber=%2B15105551212", None),
        (f"{BASE}/twimlets/forward?PhoneNumber=%2B18765550123", BLOCKED),
        ("https://voice.example.com/twimlets/forward?PhoneNumber=876-555-0123", BLOCKED),
        ("https://voice.example.com/tel/twimlets/forward/?PhoneNumber=8765550123", BLOCKED),
        (f"{BASE}/twimlets/forward?PhoneNumber=%2B442071838750", NOT_ALLOWED),
        # A raw "+" is a space in a query: read as NANP when 11 digits start with 1 ...
        (f"{BASE}/twimlets/forward?PhoneNumber=+15105551212", None),
        # ... and not read at all otherwise.
        (f"{BASE}/twimlets/forward?PhoneNumber=+442071838750", NOT_E164),
        (f"{BASE}/twimlets/callme?PhoneNumber=%2B19005550000", BLOCKED),
        (f"{BASE}/twimlets/forward", None),
        (
            f"{BASE}/twimlets/simulring?PhoneNumbers%5B%5D=%2B15105551212"
            "&PhoneNumbers%5B%5D=%2B18095550123",
            BLOCKED,
        ),
        (f"{BASE}/twimlets/findme?PhoneNumbers%5B3%5D=%2B18295550123", BLOCKED),
        (f"{BASE}/twimlets/findme?PhoneNumbers=%2B18495550123", BLOCKED),
        (f"{BASE}/twimlets/findme?PhoneNumbers%5B%5D=&PhoneNumbers%5B%5D=0", None),
        (
            f"{BASE}/twimlets/conference?Moderators%5B%5D=%2B442071838750&EnableSmsNotifications=1",
            NOT_ALLOWED,
        ),
        # Moderators are texted only with notifications on.
        (f"{BASE}/twimlets/conference?Moderators%5B%5D=%2B442071838750", None),
        (f"{BASE}/twimlets/voicemail?Email=a%40b.org&NotifySms=%2B18765550123", BLOCKED),
        (f"{BASE}/twimlets/voicemail?Email=a%40b.org&NotifySms=%2B15105551212", None),
        # Nested: a FailUrl, menu options, echo's TwiML.
        (
            f"{BASE}/twimlets/forward?PhoneNumber=%2B15105551212&FailUrl="
            + quote(f"{BASE}/twimlets/forward?PhoneNumber=%2B18765550123", safe=""),
            BLOCKED,
        ),
        (
            f"{BASE}/twimlets/menu?Options%5B1%5D="
            + quote(f"{BASE}/twimlets/findme?PhoneNumbers[]=%2B12845550123", safe=""),
            BLOCKED,
        ),
        (
            f"{BASE}/twimlets/echo?Twiml="
            + quote("<Response><Dial>+18765550123</Dial></Response>", safe=""),
            BLOCKED,
        ),
        (f"{BASE}/twimlets/echo?Twiml=" + quote("<Response><Say>hi</Say></Response>"), None),
    ],
)
def test_urls(url, expected):
    assert url_reason(url) == expected


def test_nesting_is_bounded():
    url = f"{BASE}/twimlets/forward?PhoneNumber=%2B15105551212"
    for _ in range(MAX_URLS + 1):
        url = f"{BASE}/twimlets/forward?PhoneNumber=%2B15105551212&FailUrl=" + quote(url, safe="")
    assert url_reason(url) == UNCHECKED


def test_the_owners_policy_applies():
    wide = Policy(None, ())
    document = "<Response><Dial>+442071838750</Dial></Response>"
    assert twiml_refusal(wide, document) is None
    assert url_refusal(wide, f"{BASE}/twimlets/forward?PhoneNumber=%2B18765550123") is None
