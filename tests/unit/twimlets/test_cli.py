"""`python -m devkit url`: a twimlet URL to paste into the Twilio console, signed as generated."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from chalicelib.webhooks.signature import verify
from devkit import cli
from devkit.events import twilio_event

API = "https://abc.execute-api.us-east-1.amazonaws.com/api"


def url(capsys, *argv: str) -> str:
    assert cli.main(["url", *argv]) == 0
    return capsys.readouterr().out.strip()


def test_url_is_canonically_encoded_in_the_order_given(capsys, monkeypatch):
    monkeypatch.delenv("SWITCHBOARD_PUBLIC_URL", raising=False)
    printed = url(
        capsys,
        "forward",
        "--param",
        "PhoneNumber=+14155550100",
        "--param",
        "AllowedCallers[]=+1 510-555-1212",
        "--param",
        "FailUrl=https://example.org/~ops/busy.xml",
        "--base",
        API + "/",
    )
    assert printed == (
        f"{API}/twimlets/forward?PhoneNumber=%2B14155550100"
        "&AllowedCallers%5B%5D=%2B1+510-555-1212"
        "&FailUrl=https%3A%2F%2Fexample.org%2F%7Eops%2Fbusy.xml"
    )


def test_printed_url_passes_the_signature_check(capsys):
    printed = url(
        capsys,
        "findme",
        "--param",
        "PhoneNumbers[]=+16175550101",
        "--param",
        "Message=Café & co ~ 100%",
        "--param",
        "PhoneNumbers[]=+16175550102",
        "--base",
        API,
    )
    assert "PhoneNumbers%5B%5D=%2B16175550101&PhoneNumbers%5B%5D=%2B16175550102&Message=" in printed
    event = twilio_event(printed, {"From": "+1"}, auth_token="t", routes=["/twimlets/{name}"])
    headers = CaseInsensitiveDict(event["headers"])
    assert verify(event, headers, event["body"].encode(), "t", None).url == printed


def test_base_defaults_to_the_public_url_then_the_local_stack(capsys, monkeypatch):
    monkeypatch.setattr(cli.stack, "read_state", lambda: {"app_url": "http://127.0.0.1:8000"})
    monkeypatch.delenv("SWITCHBOARD_PUBLIC_URL", raising=False)
    assert url(capsys, "message") == "http://127.0.0.1:8000/twimlets/message"
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com")
    assert url(capsys, "message", "--param", "Message=Hi") == (
        "https://voice.example.com/twimlets/message?Message=Hi"
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["nope"], "unknown twimlet 'nope'"),
        (["message", "--param", "Message"], "--param takes NAME=VALUE"),
        (["message", "--param", "=x"], "--param takes NAME=VALUE"),
        (["message", "--base", "htp:/x"], "--base 'htp:/x' is not an http(s) URL"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, said, monkeypatch, capsys):
    monkeypatch.setenv("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com")
    with pytest.raises(SystemExit) as exited:
        cli.main(["url", *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said}") and len(err.strip().splitlines()) == 1


def test_no_base_at_all(monkeypatch):
    monkeypatch.setattr(cli.stack, "read_state", lambda: {})
    monkeypatch.delenv("SWITCHBOARD_PUBLIC_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["url", "message"])
    assert exited.value.code == 2
