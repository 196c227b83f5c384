"""Phone numbers on the local Twilio, and `numbers list|configure` through the real client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from devkit import cli, demo, phone_cli, stack
from devkit.fake_twilio import FakeTwilio


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    with FakeTwilio(accounts={demo.ACCOUNT_SID: demo.AUTH_TOKEN}) as fake:
        fake.numbers.add(demo.ACCOUNT_SID, demo.NUMBER, voice_url="http://127.0.0.1:8000/voice")
        state = {
            "twilio_url": fake.url,
            "account_sid": demo.ACCOUNT_SID,
            "auth_token": demo.AUTH_TOKEN,
            "app_url": "http://127.0.0.1:8000",
        }
        monkeypatch.setattr(stack, "read_state", lambda: state)
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_REGION", "TWILIO_EDGE"):
            monkeypatch.delenv(name, raising=False)
        yield fake


def test_numbers_list_and_configure_point_the_webhooks_at_the_app(local, capsys):
    assert cli.main(["numbers", "list"]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listed["phone_number"], listed["voice_url"]) == (
        demo.NUMBER,
        "http://127.0.0.1:8000/voice",
    )
    base = "https://abc123.execute-api.us-east-1.amazonaws.com/api"
    assert cli.main(["numbers", "configure", demo.NUMBER, "--base", base]) == 0
    before, after = capsys.readouterr().out.splitlines()
    assert json.loads(before.removeprefix("before: "))["voice_url"].endswith(":8000/voice")
    after_fields = json.loads(after.removeprefix("after:  "))
    assert after_fields["voice_url"] == f"{base}/voice"
    assert after_fields["sms_url"] == f"{base}/sms"
    assert after_fields["voice_fallback_url"] == f"{base}/fallback"
    assert after_fields["status_callback"] == f"{base}/status/calls"
    # What `phone call --to` reaches follows the number's configuration.
    assert phone_cli.configured_voice_url(demo.NUMBER) == f"{base}/voice"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["numbers", "configure", "+15005550099", "--base", "http://x"], "not a number"),
        (["numbers", "configure", demo.NUMBER, "--base", "ftp://x"], "--base must be"),
    ],
)
def test_numbers_errors_are_one_line(local, argv, message):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert message in str(stopped.value) and "\n" not in str(stopped.value)


def test_the_local_twilio_speaks_twilios_shapes_for_numbers_and_accounts(local):
    client = Client(demo.ACCOUNT_SID, demo.AUTH_TOKEN)
    client.api.base_url = local.url
    client.region = client.edge = None
    (number,) = client.incoming_phone_numbers.list()
    assert client.incoming_phone_numbers(number.sid).fetch().phone_number == demo.NUMBER
    assert client.outgoing_caller_ids.list() == []  # verified caller IDs, not Twilio numbers
    local.numbers.verify(demo.ACCOUNT_SID, "+15105550199")
    assert [c.phone_number for c in client.outgoing_caller_ids.list()] == ["+15105550199"]
    assert client.api.v2010.accounts(demo.ACCOUNT_SID).fetch().status == "active"
    with pytest.raises(TwilioRestException) as refused:
        client.incoming_phone_numbers(number.sid).update(voice_method="PUT")
    assert (refused.value.status, refused.value.code) == (400, 21603)
    other = Client(demo.ACCOUNT_SID, "wrong")
    other.api.base_url = local.url
    other.region = other.edge = None
    with pytest.raises(TwilioException, match="20003"):
        other.incoming_phone_numbers.list()


def test_configure_finds_a_stages_url_in_its_stack(local, capsys, moto_url, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", demo.REGION)
    for name, value in demo.AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    endpoint = "https://abc123.execute-api.us-east-1.amazonaws.com/api/"
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"EndpointURL": {"Value": endpoint}},
    }
    boto3.client("cloudformation").create_stack(
        StackName="switchboard-prod", TemplateBody=json.dumps(template)
    )
    assert cli.main(["numbers", "configure", demo.NUMBER, "--stage", "prod"]) == 0
    after = capsys.readouterr().out.splitlines()[1].removeprefix("after:  ")
    assert json.loads(after)["voice_url"] == endpoint + "voice"
    with pytest.raises(SystemExit, match="cannot read the stack switchboard-dev"):
        cli.main(["numbers", "configure", demo.NUMBER, "--stage", "dev"])
