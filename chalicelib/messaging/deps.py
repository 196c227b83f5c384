"""The collaborators handlers need, built lazily from settings and parameters."""

from __future__ import annotations

from chalicelib.aws import parameters, storage
from chalicelib.core import settings
from chalicelib.telephony.twilio_rest import Credentials, TwilioRest, get_twilio

# What Credentials.from_parameters reads: read afresh together when Twilio refuses them.
CREDENTIALS = (
    "twilio/account_sid",
    "twilio/auth_token",
    "twilio/api_key_sid",
    "twilio/api_key_secret",
)


def table(config: settings.Settings | None = None) -> storage.Table:
    """The app's DynamoDB table.

    Raises:
        SettingError: SWITCHBOARD_TABLE is not set.
    """
    config = config or settings.load()
    return storage.get_table(config.require_table())


def twilio(config: settings.Settings | None = None) -> TwilioRest:
    """The Twilio REST wrapper with the stage's credentials, read afresh when Twilio refuses them.

    Raises:
        ParameterStoreError, MissingParameterError: credentials cannot be read.
    """
    config = config or settings.load()
    credentials = Credentials.from_parameters(parameters.load(config))

    def renew(refused: Credentials) -> Credentials | None:
        # One forced read per container per ten seconds; a thread refused at the same time as
        # the one that read takes what it found from the cache.
        parameters.reread_all(config, CREDENTIALS)
        try:
            fresh = Credentials.from_parameters(parameters.load(config))
        except (parameters.ParameterStoreError, parameters.MissingParameterError):
            return None
        return fresh if fresh != refused else None

    return get_twilio(credentials, base_url=config.twilio_api_base_url, renew=renew)
