"""POST /client/token through API Gateway events carrying a Cognito authorizer's claims."""

from __future__ import annotations

import jwt
import pytest
from twilio.jwt.access_token import AccessToken

from chalicelib.aws import parameters
from chalicelib.core import clock
from devkit import demo

ALICE = {"cognito:username": "alice", "cognito:groups": "softphone", "token_use": "id"}


@pytest.fixture
def softphone(ssm):
    """The parameters a deployment with the softphone has: an API key and the TwiML App."""
    demo.put_parameters(
        ssm,
        demo.SSM_PATH,
        {
            **demo.parameters(api_key=True),
            "voice/twiml_app_sid": (demo.TWIML_APP_SID, "String"),
        },
    )
    parameters.reset()
    return ssm


def decode(token: str) -> dict:
    """Checked as Twilio checks it: signed with the API key's secret, HS256, in its lifetime."""
    return jwt.decode(token, demo.API_KEY_SECRET, algorithms=["HS256"])


def test_a_softphone_user_gets_a_voice_token_for_their_own_identity(caller, softphone, frozen):
    response = caller.api("/client/token", claims=ALICE)
    assert response["statusCode"] == 200, response["body"]
    body = response["json"]
    assert body["identity"] == "alice"
    claims = decode(body["token"])
    assert claims["iss"] == demo.API_KEY_SID
    assert claims["sub"] == demo.ACCOUNT_SID
    assert claims["grants"]["identity"] == "alice"
    voice = claims["grants"]["voice"]
    assert voice["outgoing"]["application_sid"] == demo.TWIML_APP_SID
    assert voice["incoming"]["allow"] is True
    assert claims["exp"] - claims["nbf"] == 3600
    assert claims["nbf"] == int(frozen.now)
    assert body["expires_at"] == clock.iso(claims["exp"])
    # twilio's own decoder agrees (the header Twilio requires included)
    assert AccessToken.from_jwt(body["token"], demo.API_KEY_SECRET).headers["cty"] == (
        "twilio-fpa;v=1"
    )


def test_the_identity_comes_from_the_claims_never_from_the_request(caller, softphone):
    response = caller.api(
        "/client/token",
        {"identity": "mallory"},
        claims=ALICE,
        headers={"X-Identity": "mallory"},
    )
    assert response["json"]["identity"] == "alice"
    assert decode(response["json"]["token"])["grants"]["identity"] == "alice"


def test_no_token_without_a_cognito_identity(caller, softphone):
    """API Gateway refuses such a request before the app; the app refuses it too."""
    response = caller.api("/client/token")
    assert response["statusCode"] == 403
    assert "Cognito" in response["json"]["error"]["message"]
    access = {**ALICE, "token_use": "access"}
    assert caller.api("/client/token", claims=access)["statusCode"] == 403
    anonymous = {k: v for k, v in ALICE.items() if k != "cognito:username"}
    assert caller.api("/client/token", claims=anonymous)["statusCode"] == 403


@pytest.mark.parametrize(
    "groups", ["softphone", "admins,softphone", "[admins softphone]", "[softphone]"]
)
def test_every_written_form_of_the_groups_claim_is_read(caller, softphone, groups):
    response = caller.api("/client/token", claims={**ALICE, "cognito:groups": groups})
    assert response["statusCode"] == 200, response["body"]


@pytest.mark.parametrize("groups", [None, "", "admins", "softphones", "[admins]"])
def test_a_user_outside_the_softphone_group_gets_no_token(caller, softphone, groups):
    claims = dict(ALICE)
    if groups is None:
        del claims["cognito:groups"]
    else:
        claims["cognito:groups"] = groups
    response = caller.api("/client/token", claims=claims)
    assert response["statusCode"] == 403
    assert "softphone group" in response["json"]["error"]["message"]


def test_a_username_twilio_cannot_take_as_an_identity_is_refused(caller, softphone):
    response = caller.api("/client/token", claims={**ALICE, "cognito:username": "a b<c>"})
    assert response["statusCode"] == 403


@pytest.mark.parametrize(
    "missing", ["twilio/api_key_sid", "twilio/api_key_secret", "voice/twiml_app_sid"]
)
def test_a_missing_parameter_is_a_500_naming_it(caller, softphone, missing):
    softphone.delete_parameter(Name=f"{demo.SSM_PATH}/{missing}")
    parameters.reset()
    response = caller.api("/client/token", claims=ALICE)
    assert response["statusCode"] == 500
    assert missing in response["json"]["error"]["message"]
    assert demo.API_KEY_SECRET not in response["body"]


def test_a_parameter_of_the_wrong_kind_is_a_500_naming_it(caller, softphone):
    demo.put_parameters(
        softphone, demo.SSM_PATH, {"voice/twiml_app_sid": ("PN" + "0" * 32, "String")}
    )
    parameters.reset()
    response = caller.api("/client/token", claims=ALICE)
    assert response["statusCode"] == 500
    assert response["json"]["error"]["parameter"] == "voice/twiml_app_sid"


@pytest.mark.parametrize(("written", "lifetime"), [("600", 600), ("86400", 3600), ("x", 3600)])
def test_the_lifetime_is_an_hour_at_most(caller, softphone, written, lifetime):
    demo.put_parameters(softphone, demo.SSM_PATH, {"voice/token_ttl_seconds": (written, "String")})
    parameters.reset()
    claims = decode(caller.api("/client/token", claims=ALICE)["json"]["token"])
    assert claims["exp"] - claims["nbf"] == lifetime


def test_the_api_key_secret_never_reaches_the_logs(caller, softphone, log_lines):
    caller.api("/client/token", claims=ALICE)
    lines = log_lines()
    assert any(line.get("message") == "softphone token issued" for line in lines)
    assert demo.API_KEY_SECRET not in str(lines)
