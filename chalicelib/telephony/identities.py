"""Twilio Client identities: the names browser users register under and are dialled by.

Twilio asks for identities of letters, digits and underscores and caps them at 121 characters;
the Voice SDK's examples also use "-", "." and "@" (an email as a username), which Twilio
accepts. Anything else is refused here rather than sent to Twilio: an identity ends up in TwiML
(<Client>), in access tokens and in logs.
"""

from __future__ import annotations

import re

PREFIX = "client:"
_IDENTITY = re.compile(r"[A-Za-z0-9_.@-]{1,121}")


def valid(identity: str) -> bool:
    """Whether identity is one this app mints tokens for and dials."""
    return bool(_IDENTITY.fullmatch(identity))


def of_address(address: str | None) -> str | None:
    """The identity in a "client:NAME" address (Twilio's From and To for browser legs)."""
    if not address or not address.startswith(PREFIX):
        return None
    name = address[len(PREFIX) :]
    return name if valid(name) else None


def parse_list(raw: str | None) -> list[str]:
    """A comma-separated list of identities ("alice, bob" or "client:alice"), valid ones only,
    in order and without repeats."""
    found: list[str] = []
    for part in (raw or "").split(","):
        name = part.strip()
        name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
        if valid(name) and name not in found:
            found.append(name)
    return found
