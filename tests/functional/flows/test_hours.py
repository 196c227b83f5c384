"""The business-hours flow of docs/your-own-flow.md, through signed API Gateway events."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.aws import parameters
from devkit import demo
from tests.functional.conftest import EXECUTE_API

CALL = {
    "CallSid": "CA" + "1" * 32,
    "AccountSid": demo.ACCOUNT_SID,
    "From": "+15105551212",
    "To": demo.NUMBER,
}
THURSDAY_10AM_NEW_YORK = datetime(2026, 12, 3, 15, 0, tzinfo=UTC).timestamp()
THURSDAY_8PM_NEW_YORK = datetime(2026, 12, 4, 1, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def hours(ssm, frozen):
    """The owner's parameters for the flow, as `put-params` or the console would set them."""
    demo.put_parameters(
        ssm,
        demo.SSM_PATH,
        {
            "hours/open": ("09:00-17:00", "String"),
            "hours/days": ("mon-fri", "String"),
            "hours/timezone": ("America/New_York", "String"),
            "hours/sales_number": ("+14155550123", "String"),
            "hours/voicemail_email": ("owner@example.com", "String"),
        },
    )
    parameters.reset()
    return frozen


def twiml(response):
    assert response["statusCode"] == 200, response["body"]
    return ET.fromstring(response["body"])


def test_in_hours_the_menu_answers_with_absolute_urls(caller, hours):
    hours.now = THURSDAY_10AM_NEW_YORK
    root = twiml(caller.webhook("/hours", CALL))
    gather, redirect = root
    assert gather.get("action") == f"{EXECUTE_API}/hours/menu"  # the stage kept
    assert redirect.text == f"{EXECUTE_API}/hours"


def test_behind_a_custom_domain_the_urls_keep_its_base_path(caller, hours):
    hours.now = THURSDAY_10AM_NEW_YORK
    base = "https://tel.example.com/main"
    root = twiml(caller.webhook("/hours", CALL, base=base))
    assert root[0].get("action") == f"{base}/hours/menu"


def test_pressing_1_rings_sales_then_voicemail(caller, hours):
    root = twiml(caller.webhook("/hours/menu", {**CALL, "Digits": "1"}))
    dial, say, redirect = root
    assert (dial.text, dial.get("timeout")) == ("+14155550123", "20")
    assert say.text.startswith("Sorry, nobody")
    assert redirect.text.startswith(f"{EXECUTE_API}/twimlets/voicemail?Email=owner%40example.com")


def test_pressing_2_leaves_a_message_and_anything_else_repeats(caller, hours):
    (redirect,) = twiml(caller.webhook("/hours/menu", {**CALL, "Digits": "2"}))
    assert "/twimlets/voicemail?" in redirect.text
    say, again = twiml(caller.webhook("/hours/menu", {**CALL, "Digits": "9"}))
    assert say.text == "Sorry, I did not get that."
    assert again.text == f"{EXECUTE_API}/hours"


def test_a_sales_number_the_policy_blocks_is_never_dialled(caller, ssm, hours):
    demo.put_parameters(ssm, demo.SSM_PATH, {"hours/sales_number": ("+18765550100", "String")})
    parameters.reset()
    root = twiml(caller.webhook("/hours/menu", {**CALL, "Digits": "1"}))
    assert [element.tag for element in root] == ["Say", "Redirect"]


def test_out_of_hours_calls_go_to_voicemail_and_texts_get_a_reply(caller, hours):
    hours.now = THURSDAY_8PM_NEW_YORK
    say, redirect = twiml(caller.webhook("/hours", CALL))
    assert say.text.startswith("Thanks for calling. We are closed")
    assert "/twimlets/voicemail?" in redirect.text
    sms = {"MessageSid": "SM" + "2" * 32, "AccountSid": demo.ACCOUNT_SID, "Body": "open?"}
    (message,) = twiml(caller.webhook("/hours/sms", {**sms, "From": "+15105551212"}))
    assert message.tag == "Message" and "closed" in message.text
    hours.now = THURSDAY_10AM_NEW_YORK
    assert list(twiml(caller.webhook("/hours/sms", {**sms, "From": "+15105551212"}))) == []


def test_an_unsigned_request_is_refused(caller, hours):
    assert caller.webhook("/hours", CALL, signature="")["statusCode"] == 403


def test_the_guides_phone_script_passes(app, hours, capsys, monkeypatch):
    """docs/examples/hours-call.json, run as `python -m devkit phone call --script` runs it
    against `make run` (whose app knows its public URL, http://127.0.0.1:8000)."""
    from chalicelib.core import settings
    from devkit import cli
    from devkit.phone import InProcess

    monkeypatch.setenv(settings.PUBLIC_URL, "http://127.0.0.1:8000")
    settings.reset()
    hours.now = THURSDAY_10AM_NEW_YORK
    script = Path(__file__).resolve().parents[3] / "docs" / "examples" / "hours-call.json"
    args = cli.build_parser().parse_args(["phone", "call", "--script", str(script)])
    assert args.func(args, transport=InProcess(app, demo.AUTH_TOKEN)) == 0, capsys.readouterr()
