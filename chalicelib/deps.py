"""The collaborators handlers need, built lazily from settings and parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib import parameters, settings, storage

if TYPE_CHECKING:
    from chalicelib.twilio_rest import TwilioRest


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
    from chalicelib.twilio_rest import Credentials, get_twilio

    config = config or settings.load()
    credentials = Credentials.from_parameters(parameters.load(config))
    return get_twilio(credentials, base_url=config.twilio_api_base_url)
