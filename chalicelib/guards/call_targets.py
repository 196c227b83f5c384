"""The numbers a call placed through the API reaches through its TwiML or its twimlet URL.

POST /calls may carry TwiML (twiml, or say) or a url. The destinations in that TwiML, and in
URLs that point at this app's own twimlets, pass the same policy as the call's "to": otherwise
"to" would be checked and a <Dial> a line further on would not. A URL that points elsewhere
is the owner's own server, which this app cannot read.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

from chalicelib.guards.destinations import Policy, Refusal, check_written
from chalicelib.twimlets import phpargs

INVALID_TWIML = "invalid_twiml"
UNCHECKED = "unchecked_destination"

# Any host: the app answers on its execute-api URL as on its custom domain, under any stage or
# base path; a foreign URL with the same path is checked too, at no cost but strictness.
_TWIMLET_PATH = re.compile(r"/twimlets/([A-Za-z]+)/?$")
# URLs followed from one request (nested FailUrl, menu Options, echo's Twiml): a bound on the
# work a crafted URL can cause, well above what a real call flow nests.
MAX_URLS = 25
_URL = re.compile(r"\s*https?://", re.IGNORECASE)


class _Walk:
    """One request's inspection, with its budget of URLs."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.urls = 0

    def document(self, document: str) -> Refusal | None:
        upper = document.upper()
        if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
            return Refusal(
                "", INVALID_TWIML, "TwiML must not carry a DOCTYPE or entity declarations"
            )
        try:
            root = ET.fromstring(document)
        except ET.ParseError:
            return Refusal("", INVALID_TWIML, "the TwiML is not well-formed XML")
        for element in root.iter():
            tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
            if tag == "Sip":
                return Refusal(
                    (element.text or "").strip(),
                    UNCHECKED,
                    "<Sip> cannot be checked against the destination policy; dial a <Number>, "
                    "or give a url to your own TwiML",
                )
            for written in _numbers(tag, element):
                refusal = self.number(written)
                if refusal is not None:
                    return refusal
            for value in (element.text, *element.attrib.values()):
                if value and _URL.match(value):
                    refusal = self.url(value.strip())
                    if refusal is not None:
                        return refusal
        return None

    def number(self, written: str) -> Refusal | None:
        return check_written(self.policy, html.unescape(written).strip())[1]

    def url(self, url: str) -> Refusal | None:
        parts = urlsplit(url)
        match = _TWIMLET_PATH.search(parts.path)
        if match is None:
            return None
        self.urls += 1
        if self.urls > MAX_URLS:
            return Refusal("", UNCHECKED, "too many nested twimlet URLs to check")
        config = phpargs.parse(parse_qsl(parts.query, keep_blank_values=True))
        name = match.group(1)
        for written in _twimlet_numbers(name, config):
            refusal = self.number(written)
            if refusal is not None:
                return refusal
        twiml = config.get("Twiml")
        if name == "echo" and isinstance(twiml, str) and twiml.strip():
            refusal = self.document(twiml)
            if refusal is not None:
                return refusal
        for value in _strings(config):
            if _URL.match(value):
                refusal = self.url(value.strip())
                if refusal is not None:
                    return refusal
        return None


def _numbers(tag: str, element: ET.Element) -> list[str]:
    """The numbers one TwiML element dials or texts."""
    if tag == "Dial" and element.text and element.text.strip():
        return [element.text]
    if tag == "Number":
        return [element.text or ""]
    if tag in ("Sms", "Message") and element.get("to") is not None:
        return [element.get("to") or ""]
    return []


def _twimlet_numbers(name: str, config: dict[str, phpargs.PhpValue]) -> list[str]:
    """The numbers a twimlet URL makes the app call or text (as the twimlets read them)."""
    if name in ("forward", "callme"):
        number = config.get("PhoneNumber")
        return [number] if isinstance(number, str) and number else []
    if name in ("simulring", "findme"):
        return phpargs.filtered(phpargs.as_list(config.get("PhoneNumbers")))
    if name == "conference":
        moderators = config.get("Moderators")
        if isinstance(moderators, dict) and phpargs.truthy(config.get("EnableSmsNotifications")):
            return [m for m in phpargs.as_list(moderators) if m]
    if name == "voicemail":
        number = config.get("NotifySms")
        return [number] if isinstance(number, str) and number.strip() else []
    return []


def _strings(value: phpargs.PhpValue) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    else:
        for item in value.values():
            yield from _strings(item)


def twiml_refusal(policy: Policy, document: str) -> Refusal | None:
    """The first destination in a TwiML document that the policy refuses, or None."""
    return _Walk(policy).document(document)


def url_refusal(policy: Policy, url: str) -> Refusal | None:
    """The first destination a URL to one of this app's twimlets reaches and the policy
    refuses, or None (None too for any other URL)."""
    return _Walk(policy).url(url)
