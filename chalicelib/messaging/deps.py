"""The collaborators handlers need, built lazily from settings and parameters."""

from __future__ import annotations

from chalicelib.aws import parameters, storage
from chalicelib.core import settings
from chalicelib.telephony.twilio_rest import Credentials, TwilioRest, get_twilio


def table(config: settings.Settings | None = None) -> storage.Table:
    """The app's DynamoDB table.

    Raises:
        SettingError: SWITCHBOARD_TABLE is not set.
    """
    config = config or settings.load()
    return storage.get_table(config.require_table())


def twilio(config: settings.Settings | None = None) -> TwilioRest:
    """The Twilio REST wrapper with the stage's credentials.

    Raises:
        ParameterStoreError, MissingParameterError: credentials cannot be read.
    """
    config = config or settings.load()
    credentials = Credentials.from_parameters(parameters.load(config))
    return get_twilio(credentials, base_url=config.twilio_api_base_url)
