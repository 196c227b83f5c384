"""TwiML documents built with the twilio library, from plain values only."""

from __future__ import annotations

import functools
import re

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

# What XML 1.0 forbids: C0 controls but tab, LF and CR; lone surrogates; U+FFFE and U+FFFF.
# The library escapes markup but writes these raw, which Twilio cannot parse (error 12100).
# A positive class: the complement form costs ~5 ms to compile at cold start.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(text: str) -> str:
    """Drop the characters XML 1.0 forbids, so caller or URL text cannot break the document."""
    return _NOT_XML_CHAR.sub("", text)


# The same few greetings and replies are built on every call; a document is a pure function of
# its text, so each is built once per container (~14 us each otherwise).
@functools.lru_cache(maxsize=256)
def say(text: str) -> str:
    """<Response><Say>text</Say></Response>."""
    response = VoiceResponse()
    response.say(clean_text(text))
    return str(response)


@functools.lru_cache(maxsize=256)
def message_reply(text: str | None) -> str:
    """<Response><Message>text</Message></Response>, or an empty <Response/> without text."""
    response = MessagingResponse()
    if text:
        response.message(clean_text(text))
    return str(response)
