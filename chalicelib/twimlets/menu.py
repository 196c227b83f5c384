"""The menu twimlet: read a prompt, then 302 to the URL mapped to the key pressed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.core import phpargs
from chalicelib.twimlets.common import Inputs, Redirect, add_message, read, render

if TYPE_CHECKING:
    from chalice.app import Response

    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

INVALID = "I'm sorry, that wasn't a valid option."


def menu(inputs: Inputs) -> str | Redirect:
    """Gather a key while saying Message; a mapped key redirects, another one apologises."""
    options = {
        key: url
        for key, url in phpargs.as_keyed(inputs.config.get("Options")).items()
        if url not in ("", "0")
    }
    response = VoiceResponse()
    pressed = inputs.field("Digits")
    if pressed:
        location = options.get(pressed)
        if location:
            return Redirect(location)
        response.say(INVALID)
    # Measured in bytes, as PHP's strlen, after blanks are dropped: Options[123]= adds nothing.
    num_digits = max([1, *(len(key.encode("utf-8")) for key in options)])
    gather = response.gather(num_digits=str(num_digits))
    add_message(gather, inputs.conf("Message"), trimmed=False)
    # No URL: Twilio requests this (signed) document again, replaying the menu.
    response.redirect("")
    return str(response)


def menu_webhook(verified: VerifiedRequest, parameters: Parameters) -> str | Response:
    """GET/POST /twimlets/menu."""
    return render(menu(read(verified)))
