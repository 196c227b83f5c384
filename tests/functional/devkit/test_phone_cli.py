"""`python -m devkit phone call|sms`: transcripts, scripted expectations and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit import cli, demo, phone_cli
from devkit.phone import InProcess
from tests.functional.conftest import EXECUTE_API
from tests.functional.devkit import flows


def run(app: Any, *argv: str) -> int:
    args = cli.build_parser().parse_args(["phone", *argv])
    return args.func(args, transport=InProcess(app, demo.AUTH_TOKEN))


def test_the_hello_world_call_ends_normally(app, capsys):
    assert run(app, "call", "--url", f"{EXECUTE_API}/voice") == 0
    out = capsys.readouterr().out
    assert "Say" in out and "Hello World" in out


def test_a_script_doubles_as_a_test(app, tmp_path, capsys):
    forward = f"{EXECUTE_API}/twimlets/forward?PhoneNumber=%2B14155550100"
    script = tmp_path / "call.json"
    script.write_text(
        json.dumps(
            {
                "url": forward,
                "dial": {"+14155550100": "busy"},
                "expect_dial": ["+14155550100"],
                "expect_say": [],
            }
        )
    )
    transcript = tmp_path / "call.txt"
    assert run(app, "call", "--script", str(script), "--transcript", str(transcript)) == 0
    assert "Dial ended    busy" in transcript.read_text()
    script.write_text(json.dumps({"url": forward, "expect_say": ["Welcome to the jungle"]}))
    assert run(app, "call", "--script", str(script)) == 1
    assert "expected to hear 'Welcome to the jungle'" in capsys.readouterr().err


def test_an_http_error_names_twilios_error_code(app, capsys):
    assert run(app, "call", "--url", f"{EXECUTE_API}/twimlets/nope") == 1
    assert "error 11200 HTTP retrieval failure: HTTP 404" in capsys.readouterr().err


def test_an_unknown_verb_is_error_12200():
    from devkit.phone import Step, Transcript

    transcript = Transcript()
    transcript.steps.append(Step("caller", "Shout", "hi", {}))
    assert phone_cli.problems(transcript) == [
        "12200 Schema validation warning: unknown verb <Shout>"
    ]


def test_a_bad_dial_outcome_is_a_one_line_error(app, capsys):
    assert run(app, "call", "--url", f"{EXECUTE_API}/voice", "--dial-outcome", "maybe") == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_an_inbound_sms_prints_the_replies(app, capsys):
    url = f"{EXECUTE_API}/sms"
    assert run(app, "sms", "--url", url, "--from", "+15105551212", "--body", "HELP") == 0
    assert "reply: " in capsys.readouterr().out
    assert run(app, "sms", "--url", url, "--body", "just saying hi") == 0
    assert "(no reply)" in capsys.readouterr().out


def test_keys_can_be_typed_when_the_script_runs_out(app):
    from devkit.phone import Phone

    typed = iter(["2", None])
    from urllib.parse import quote

    option = quote(f"{EXECUTE_API}/twimlets/message?Message=Hi", safe="")
    menu = f"{EXECUTE_API}/twimlets/menu?Message=Press%202&Options%5B2%5D={option}"
    phone = Phone(InProcess(app, demo.AUTH_TOKEN), ask=lambda: next(typed))
    verbs = phone.call(menu).verbs()
    assert ("Pressed", "2") in verbs


def test_a_yaml_script_runs_menu_then_findme_then_voicemail(app, tmp_path, capsys):
    menu = flows.findme_menu(EXECUTE_API)
    script = tmp_path / "flow.yaml"
    script.write_text(flows.unanswered(menu))
    assert run(app, "call", "--script", str(script)) == 0, capsys.readouterr().err
    assert "Record" in capsys.readouterr().out
    script.write_text(flows.answered(menu))
    assert run(app, "call", "--script", str(script)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Connected" in out and "Record" not in out


def test_a_conference_with_a_pass_code(app, capsys):
    room = flows.twimlet(EXECUTE_API, "conference", ("Name", "standup"), ("Password", "4321"))
    assert run(app, "call", "--url", room, "--digits", "4321") == 0
    assert "Conference" in capsys.readouterr().out
    assert run(app, "call", "--url", room, "--digits", "1111") == 0
    assert "Conference" not in capsys.readouterr().out


def test_client_and_sip_nouns_are_dialled_too():
    from devkit.phone import Phone, Reply

    class Twiml:
        def request(self, method, url, params):
            body = (
                "<Response><Dial><Client>alice</Client><Sip>sip:bob@example.com</Sip></Dial>"
                "</Response>"
            )
            return Reply(200, {}, body)

    phone = Phone(Twiml(), outcomes={"client:alice": "busy"})
    verbs = phone.call("https://example.com/voice").verbs()
    assert ("Dial", "client:alice, sip:bob@example.com") in verbs
    assert ("Dial ended", "busy") in verbs


@pytest.mark.parametrize("typo", ["urll", "expect_says"])
def test_an_unknown_script_key_is_an_error_not_a_test_that_always_passes(
    app, tmp_path, capsys, typo
):
    script = tmp_path / "call.json"
    script.write_text(json.dumps({"url": f"{EXECUTE_API}/voice", typo: ["x"]}))
    assert run(app, "call", "--script", str(script)) == 2
    message = capsys.readouterr().err
    assert f"unknown key {typo!r}" in message and "expect_say" in message
    assert len(message.strip().splitlines()) == 1


def test_a_url_that_is_no_url_is_a_usage_error(app, capsys):
    assert run(app, "call", "--url", "not a url") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --url 'not a url' is not an http(s) URL")


@pytest.fixture
def softphone(ssm):
    from chalicelib.aws import parameters

    demo.put_parameters(
        ssm,
        demo.SSM_PATH,
        {
            "voice/twiml_app_sid": (demo.TWIML_APP_SID, "String"),
            "voice/ring_clients": ("alice,bob", "String"),
        },
    )
    parameters.reset()
    return ssm


def test_a_browser_user_calls_a_number_through_the_twiml_app(app, softphone, capsys):
    url = f"{EXECUTE_API}/client/voice"
    argv = ["call", "--client", "alice", "--to", "+14155550123", "--url", url]
    assert run(app, *argv, "--application-sid", demo.TWIML_APP_SID) == 0
    out = capsys.readouterr().out
    assert "Dial" in out and "+14155550123" in out
    # and another browser user
    argv[4] = "client:bob"
    assert run(app, *argv, "--application-sid", demo.TWIML_APP_SID) == 0
    assert "client:bob" in capsys.readouterr().out


def test_a_browser_call_needs_what_it_dials(app, softphone, capsys):
    assert run(app, "call", "--client", "alice", "--url", f"{EXECUTE_API}/client/voice") == 2
    assert "--client needs --to" in capsys.readouterr().err
    assert run(app, "call", "--client", "a b", "--to", "+14155550123") == 2
    assert "not a Twilio Client identity" in capsys.readouterr().err


def test_an_incoming_call_rings_the_browser_users_then_the_greeting(app, softphone, capsys):
    url = f"{EXECUTE_API}/voice"
    assert run(app, "call", "--url", url, "--dial-outcome", "no-answer") == 0
    out = capsys.readouterr().out
    assert "client:alice, client:bob" in out
    assert "callee client:alice" in out and "Ringing" in out
    assert "Hello World" in out  # /voice/unanswered, after nobody picked up
