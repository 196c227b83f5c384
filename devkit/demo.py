"""Obviously fake demo credentials and parameters shared by the local stack and the tests."""

from __future__ import annotations

ACCOUNT_SID = "AC" + "0" * 31 + "1"  # all zeros: obviously not a real account
AUTH_TOKEN = "local-demo-auth-token-not-a-secret"
API_KEY_SID = "SK" + "0" * 31 + "1"
API_KEY_SECRET = "local-demo-api-key-secret-not-a-secret"
TWIML_APP_SID = "AP" + "0" * 31 + "1"  # the softphone's TwiML App, as fake as the account
NUMBER = "+15005550006"  # Twilio's "valid" magic From number
# The local stack's voicemail sender: a reserved example domain, obviously not a real mailbox.
VOICEMAIL_FROM = "voicemail@switchboard.example"
SSM_PATH = "/switchboard/dev"
REGION = "us-east-1"
SESSION_TOKEN = "local-demo-session-token"  # what the extension checks in Lambda
AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-demo-access-key",
    "AWS_SECRET_ACCESS_KEY": "local-demo-secret-key",
}


# The fields Twilio posts for an inbound call to the demo number (blank geography included, as
# Twilio often sends it): for signed example requests in the tests, the benchmark and the CLI.
CALL = {
    "CallSid": "CA" + "a" * 32,
    "AccountSid": ACCOUNT_SID,
    "From": "+15105551212",
    "To": NUMBER,
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
    "FromZip": "",
    "FromCity": "",
}


def parameters(*, api_key: bool = False) -> dict[str, tuple[str, str]]:
    """The demo parameters under the stage path: name -> (value, SSM type)."""
    values = {
        "twilio/account_sid": (ACCOUNT_SID, "String"),
        "twilio/auth_token": (AUTH_TOKEN, "SecureString"),
        "twilio/default_from": (NUMBER, "String"),
        "voice/greeting": ("Hello World", "String"),
    }
    if api_key:
        values["twilio/api_key_sid"] = (API_KEY_SID, "String")
        values["twilio/api_key_secret"] = (API_KEY_SECRET, "SecureString")
    return values


def put_parameters(ssm: object, path: str, values: dict[str, tuple[str, str]]) -> None:
    """Write parameters under path with an SSM client (overwriting)."""
    for name, (value, kind) in values.items():
        ssm.put_parameter(  # type: ignore[attr-defined]
            Name=f"{path}/{name}", Value=value, Type=kind, Overwrite=True
        )
