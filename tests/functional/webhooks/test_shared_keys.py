"""Twilio's shared-key webhook signatures (HMAC-SHA256, the Webhooks API's SharedKeys) beside
the auth token's, through real API Gateway events signed with twilio's RequestValidator."""

from __future__ import annotations

import pytest

from chalicelib.aws import parameters
from devkit import demo

CALL = {"CallSid": "CA" + "5" * 32, "AccountSid": demo.ACCOUNT_SID, "From": "+15105551212"}
SMS = {
    "MessageSid": "SM" + "6" * 32,
    "AccountSid": demo.ACCOUNT_SID,
    "From": "+15105551212",
    "To": demo.NUMBER,
    "Body": "hello",
}
KEY = ("webhooks_sharedkey_1", "not-a-real-shared-key-secret-one")
NEXT = ("webhooks_sharedkey_2", "not-a-real-shared-key-secret-two")


def put_key(ssm, key):
    demo.put_parameters(
        ssm, demo.SSM_PATH, {f"twilio/webhook_keys/{key[0]}": (key[1], "SecureString")}
    )


@pytest.fixture
def keyed(ssm):
    put_key(ssm, KEY)
    parameters.reset()
    return ssm


def test_a_shared_key_signature_is_accepted_on_voice_and_sms(caller, keyed):
    voice = caller.webhook("/voice", CALL, shared_key=KEY)
    assert voice["statusCode"] == 200 and "<Say>" in voice["body"]
    assert caller.webhook("/sms", SMS, shared_key=KEY)["statusCode"] == 200


def test_the_auth_token_still_signs(caller, keyed):
    assert caller.webhook("/voice", CALL)["statusCode"] == 200
    sha1 = caller.webhook("/voice", CALL, settings_header="algorithm=HMAC_SHA1")
    assert sha1["statusCode"] == 200


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"shared_key": (KEY[0], "the-wrong-secret")}, "signature does not match"),
        ({"shared_key": ("webhooks_sharedkey_9", "anything")}, "unknown signing key"),
        ({"shared_key": KEY, "settings_header": "key=webhooks_sharedkey_1"}, "malformed"),
        ({"shared_key": KEY, "settings_header": "garbage"}, "malformed"),
        ({"settings_header": "key=x,algorithm=HMAC_SHA512"}, "unsupported"),
        ({"shared_key": KEY, "settings_header": "key=a b,algorithm=HMAC_SHA256"}, "malformed"),
    ],
)
def test_what_does_not_check_out_is_a_403(caller, keyed, log_lines, options, reason):
    response = caller.webhook("/voice", CALL, **options)
    assert response["statusCode"] == 403
    (line,) = [row for row in log_lines() if row["message"] == "webhook signature rejected"]
    assert reason in line["reason"]


def test_a_key_added_after_the_cache_filled_works_and_both_keys_during_rotation(caller, keyed):
    assert caller.webhook("/voice", CALL, shared_key=KEY)["statusCode"] == 200
    put_key(keyed, NEXT)  # the owner adds the next key in Twilio and here
    assert caller.webhook("/voice", CALL, shared_key=NEXT)["statusCode"] == 200  # read afresh
    assert caller.webhook("/voice", CALL, shared_key=KEY)["statusCode"] == 200  # still valid
