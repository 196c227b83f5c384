"""POST /client/token: an access token for Twilio's Voice JavaScript SDK, for a signed-in user.

Who the user is comes only from the Cognito authorizer's claims, which API Gateway puts in the
request context after checking the ID token against the stage's user pool: never from the body,
a header or a query. Only members of the softphone group get a token, so an account added to the
pool for anything else cannot call out. The token can place calls only through the TwiML App
(voice/twiml_app_sid), whose Voice URL is /client/voice, where every destination rule applies.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from chalicelib.core import clock
from chalicelib.core.errors import ConfigurationError, ForbiddenError
from chalicelib.telephony import identities

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

GROUP = "softphone"
ACCOUNT_SID = "twilio/account_sid"
API_KEY_SID = "twilio/api_key_sid"
API_KEY_SECRET = "twilio/api_key_secret"
TWIML_APP_SID = "voice/twiml_app_sid"
TOKEN_TTL = "voice/token_ttl_seconds"
DEFAULT_TTL = 3600
MIN_TTL, MAX_TTL = 60, 3600  # the promise: an hour at most
_SIDS = {
    ACCOUNT_SID: re.compile(r"AC[0-9a-fA-F]{32}"),
    API_KEY_SID: re.compile(r"SK[0-9a-fA-F]{32}"),
    TWIML_APP_SID: re.compile(r"AP[0-9a-fA-F]{32}"),
}


def groups(claims: dict[str, Any]) -> set[str]:
    """The user's Cognito groups, however the claim arrives.

    API Gateway's REST API passes every claim as a string; the written form of a list is not
    documented and has been seen as "a,b" and "[a b]". chalice local passes the decoded JSON
    list. All of them are read here.
    """
    raw = claims.get("cognito:groups")
    if isinstance(raw, list):
        return {str(group) for group in raw}
    if not isinstance(raw, str):
        return set()
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return {part for part in re.split(r"[,\s]+", text) if part}


def identity_of(claims: dict[str, Any] | None) -> str:
    """The Twilio Client identity of the signed-in user: their Cognito username.

    Raises:
        ForbiddenError: no Cognito identity (not an ID token, or no authorizer at all), a
            username Twilio cannot take as an identity, or a user outside the softphone group.
    """
    if not claims:
        raise ForbiddenError("a Cognito ID token is required")
    username = claims.get("cognito:username")
    if not isinstance(username, str) or claims.get("token_use", "id") != "id":
        raise ForbiddenError("a Cognito ID token is required")
    if not identities.valid(username):
        logger.warning("softphone token refused: username unusable as a Twilio identity")
        raise ForbiddenError(
            "the username cannot be a Twilio Client identity "
            "(letters, digits and _ . @ - only, at most 121)"
        )
    if GROUP not in groups(claims):
        logger.warning("softphone token refused: not in the group", extra={"identity": username})
        raise ForbiddenError(f"the user is not in the {GROUP} group")
    return username


def _sid(ctx: ApiContext, name: str) -> str:
    value = ctx.parameters.require(name).strip()
    if not _SIDS[name].fullmatch(value):
        prefix = _SIDS[name].pattern[:2]
        raise ConfigurationError(f"the parameter {name} is not a {prefix}… SID", name)
    return value


def ttl(ctx: ApiContext) -> int:
    """The token's lifetime: voice/token_ttl_seconds within 60..3600, else an hour."""
    raw = (ctx.parameters.optional(TOKEN_TTL) or "").strip()
    if not raw:
        return DEFAULT_TTL
    if raw.isdigit():
        return min(max(int(raw), MIN_TTL), MAX_TTL)
    logger.error("unusable token lifetime; an hour holds", extra={"parameter": TOKEN_TTL})
    return DEFAULT_TTL


def mint(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """The action behind POST /client/token: {identity, token, expires_at}.

    Raises:
        ForbiddenError: see identity_of.
        MissingParameterError: an API key or TwiML App parameter is not set (500 naming it).
        ConfigurationError: one is set but is not a SID of its kind (500 naming it).
    """
    from twilio.jwt.access_token import AccessToken
    from twilio.jwt.access_token.grants import VoiceGrant

    identity = identity_of(ctx.claims)
    account, key = _sid(ctx, ACCOUNT_SID), _sid(ctx, API_KEY_SID)
    application = _sid(ctx, TWIML_APP_SID)
    secret = ctx.parameters.require(API_KEY_SECRET)
    now = int(clock.now())
    expires = now + ttl(ctx)
    token = AccessToken(
        account,
        key,
        secret,
        identity=identity,
        nbf=now,
        valid_until=expires,
        grants=[VoiceGrant(outgoing_application_sid=application, incoming_allow=True)],
    )
    logger.info("softphone token issued", extra={"identity": identity})
    return 200, {"identity": identity, "token": token.to_jwt(), "expires_at": clock.iso(expires)}
