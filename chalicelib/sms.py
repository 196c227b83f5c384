"""Answers to the number's incoming-message webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import twiml

if TYPE_CHECKING:
    from chalicelib.parameters import Parameters
    from chalicelib.webhook_security import VerifiedRequest


def auto_reply(request: VerifiedRequest, parameters: Parameters) -> str:
    """Reply with parameter sms/auto_reply when set, else answer an empty <Response/>."""
    return twiml.message_reply(parameters.optional("sms/auto_reply"))
