"""The eleven classic twimlets under /twimlets/{name}, each module imported on its first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from chalicelib.core import responses

if TYPE_CHECKING:
    from chalice.app import Response

    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.gate import Answer
    from chalicelib.webhooks.signature import VerifiedRequest

# name -> (module, answer). A /voice cold start imports none of them; a twimlet imports its own.
TWIMLETS = {
    "message": ("simple", "message_webhook"),
    "echo": ("simple", "echo_webhook"),
    "forward": ("dialing", "forward_webhook"),
    "callme": ("dialing", "callme_webhook"),
    "simulring": ("dialing", "simulring_webhook"),
    "findme": ("dialing", "findme_webhook"),
    "whisper": ("dialing", "whisper_webhook"),
    "menu": ("menu", "menu_webhook"),
    "conference": ("conference", "conference_webhook"),
    "voicemail": ("voicemail", "voicemail_webhook"),
    "holdmusic": ("holdmusic", "holdmusic_webhook"),
}
NOT_FOUND = "Not found: no such twimlet"


def answer_for(name: str) -> Answer:
    """The answer for a twimlet name; an unknown name answers 404 once its signature checks out."""
    target = TWIMLETS.get(name)
    if target is None:
        return _not_found
    module = importlib.import_module(f"{__name__}.{target[0]}")
    return getattr(module, target[1])


def _not_found(verified: VerifiedRequest, parameters: Parameters) -> Response:
    return responses.plain(404, NOT_FOUND)
