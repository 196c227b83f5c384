"""Environment settings: names, defaults and clear errors."""

import pytest

from chalicelib.core.settings import SettingError, load


def test_defaults():
    settings = load({"SWITCHBOARD_SSM_PATH": "/switchboard/dev/"})
    assert settings.ssm_path == "/switchboard/dev"
    assert settings.public_url is None
    assert settings.twilio_api_base_url is None
    assert (settings.secrets_ttl, settings.secrets_max_stale) == (300.0, 3600.0)


def test_values():
    settings = load(
        {
            "SWITCHBOARD_SSM_PATH": "/s/prod",
            "SWITCHBOARD_PUBLIC_URL": "https://voice.example.com/tel/",
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9999",
            "SWITCHBOARD_SECRETS_TTL": "60",
            "SWITCHBOARD_SECRETS_MAX_STALE": "0",
        }
    )
    assert settings.public_url == "https://voice.example.com/tel"
    assert settings.twilio_api_base_url == "http://127.0.0.1:9999"
    assert (settings.secrets_ttl, settings.secrets_max_stale) == (60.0, 0.0)


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({}, "SWITCHBOARD_SSM_PATH"),
        ({"SWITCHBOARD_SSM_PATH": "relative"}, "SWITCHBOARD_SSM_PATH"),
        (
            {"SWITCHBOARD_SSM_PATH": "/a", "SWITCHBOARD_PUBLIC_URL": "voice.example.com"},
            "SWITCHBOARD_PUBLIC_URL",
        ),
        (
            {"SWITCHBOARD_SSM_PATH": "/a", "SWITCHBOARD_SECRETS_TTL": "soon"},
            "SWITCHBOARD_SECRETS_TTL",
        ),
        (
            {"SWITCHBOARD_SSM_PATH": "/a", "SWITCHBOARD_SECRETS_MAX_STALE": "-1"},
            "SWITCHBOARD_SECRETS_MAX_STALE",
        ),
    ],
)
def test_errors_name_the_setting(environ, name):
    with pytest.raises(SettingError) as error:
        load(environ)
    assert error.value.name == name
