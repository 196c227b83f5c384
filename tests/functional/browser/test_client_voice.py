"""/client/voice (the TwiML App's Voice URL) and /voice ringing browser users, through signed
API Gateway events against the moto server."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from chalicelib.aws import parameters
from devkit import demo
from tests.functional.conftest import EXECUTE_API

BROWSER_CALL = {
    "CallSid": "CA" + "b" * 32,
    "AccountSid": demo.ACCOUNT_SID,
    "ApplicationSid": demo.TWIML_APP_SID,
    "From": "client:alice",
    "Caller": "client:alice",
    "To": "+14155550123",
    "Called": "",
    "Direction": "inbound",
    "CallStatus": "ringing",
    "ApiVersion": "2010-04-01",
}


@pytest.fixture
def softphone(ssm):
    demo.put_parameters(ssm, demo.SSM_PATH, {"voice/twiml_app_sid": (demo.TWIML_APP_SID, "String")})
    parameters.reset()
    return ssm


def twiml(response):
    assert response["statusCode"] == 200, response["body"]
    return ET.fromstring(response["body"])


def refused(root) -> str:
    say, hangup = root
    assert (say.tag, hangup.tag) == ("Say", "Hangup")
    assert root.find("Dial") is None
    return say.text


def test_a_number_is_dialled_from_the_accounts_number_answering_on_bridge(caller, softphone):
    (dial,) = twiml(caller.webhook("/client/voice", BROWSER_CALL))
    assert dial.tag == "Dial"
    assert dial.text == "+14155550123"
    assert dial.get("callerId") == demo.NUMBER
    assert dial.get("answerOnBridge") == "true"


def test_a_number_written_as_people_write_it_is_read_as_e164(caller, softphone):
    call = {**BROWSER_CALL, "To": "(415) 555-0123"}
    (dial,) = twiml(caller.webhook("/client/voice", call))
    assert dial.text == "+14155550123"


def test_another_browser_user_is_rung_as_a_client(caller, softphone):
    (dial,) = twiml(caller.webhook("/client/voice", {**BROWSER_CALL, "To": "client:bob"}))
    (client,) = dial
    assert (client.tag, client.text) == ("Client", "bob")
    assert dial.get("callerId") == "client:alice"


def test_unsigned_or_forged_requests_are_refused(caller, softphone):
    assert caller.webhook("/client/voice", BROWSER_CALL, token="not-the-token")["statusCode"] == 403


def test_the_browser_cannot_choose_the_caller_id(caller, softphone):
    call = {**BROWSER_CALL, "CallerId": "+19005550100", "callerId": "+19005550100"}
    (dial,) = twiml(caller.webhook("/client/voice", call))
    assert dial.get("callerId") == demo.NUMBER


@pytest.mark.parametrize(
    "to",
    [
        "+19005550100",  # premium rate: the default block list
        "+18765550100",  # Jamaica: NANP billed as international
    ],
)
def test_blocked_destinations_are_never_dialled(caller, softphone, to, log_lines):
    root = twiml(caller.webhook("/client/voice", {**BROWSER_CALL, "To": to}))
    assert refused(root) == "This call is not allowed."
    assert any(line.get("message", "").startswith("destination refused") for line in log_lines())


def test_the_allow_list_applies(caller, softphone):
    demo.put_parameters(softphone, demo.SSM_PATH, {"outbound/allowed_prefixes": ("+44", "String")})
    parameters.reset()
    root = twiml(caller.webhook("/client/voice", BROWSER_CALL))
    assert refused(root) == "This call is not allowed."
    (dial,) = twiml(caller.webhook("/client/voice", {**BROWSER_CALL, "To": "+447700900123"}))
    assert dial.text == "+447700900123"


@pytest.mark.parametrize("to", ["", "911x", "sip:a@b.example", "client:", "client:a b", "12"])
def test_anything_else_gets_a_short_spoken_error(caller, softphone, to):
    root = twiml(caller.webhook("/client/voice", {**BROWSER_CALL, "To": to}))
    assert refused(root).startswith("Sorry")


@pytest.mark.parametrize(
    "change",
    [
        {"From": "+15105551212", "Caller": "+15105551212"},  # a phone, not a browser user
        {"ApplicationSid": "AP" + "9" * 32},  # another TwiML App of the account
        {"ApplicationSid": ""},
    ],
)
def test_only_this_deployments_browser_users_may_call_out(caller, softphone, change):
    root = twiml(caller.webhook("/client/voice", {**BROWSER_CALL, **change}))
    assert refused(root) == "This call is not allowed."


def test_the_per_destination_limit_holds_for_browser_calls(caller, softphone):
    demo.put_parameters(
        softphone, demo.SSM_PATH, {"outbound/max_per_destination_per_hour": ("2", "String")}
    )
    parameters.reset()
    answers = []
    for n in range(3):
        call = {**BROWSER_CALL, "CallSid": f"CA{n:032x}"}
        answers.append(twiml(caller.webhook("/client/voice", call)))
    assert [root[0].tag for root in answers] == ["Dial", "Dial", "Say"]
    assert refused(answers[2]).startswith("Too many calls")
    # another user of the account is still free to call elsewhere
    (dial,) = twiml(caller.webhook("/client/voice", {**BROWSER_CALL, "To": "+14155550124"}))
    assert dial.tag == "Dial"


def test_a_table_that_cannot_count_fails_closed(caller, softphone, aws_faults):
    aws_faults.script("dynamodb:UpdateItem", ["500"] * 10, match="velocity#")
    response = caller.webhook("/client/voice", BROWSER_CALL)
    assert response["statusCode"] == 500
    assert "<Dial" not in response["body"]


def test_a_count_applied_whose_answer_was_lost_still_dials(caller, softphone, aws_faults):
    """DynamoDB applied the count and the answer was lost: the SDK's retry meets our own count,
    which is not a refusal (and not a second count)."""
    demo.put_parameters(
        softphone, demo.SSM_PATH, {"outbound/max_per_destination_per_hour": ("1", "String")}
    )
    parameters.reset()
    aws_faults.script("dynamodb:UpdateItem", ["lost"], match="velocity#")
    (dial,) = twiml(caller.webhook("/client/voice", BROWSER_CALL))
    assert dial.tag == "Dial"
    assert aws_faults.counts() == {"dynamodb:UpdateItem lost": 1}


# --- /voice rings the browser ----------------------------------------------------------------

CALL = {**demo.CALL}


def test_an_incoming_call_rings_the_listed_browser_users_then_falls_back(caller, softphone):
    demo.put_parameters(
        softphone, demo.SSM_PATH, {"voice/ring_clients": ("alice, client:bob, bad name", "String")}
    )
    parameters.reset()
    (dial,) = twiml(caller.webhook("/voice", CALL))
    assert [(c.tag, c.text) for c in dial] == [("Client", "alice"), ("Client", "bob")]
    assert dial.get("timeout") == "20"
    assert dial.get("action") == f"{EXECUTE_API}/voice/unanswered"  # the stage kept


def test_nobody_answering_hears_the_greeting(caller, softphone):
    for status in ("no-answer", "busy", "failed", "canceled"):
        (say,) = twiml(caller.webhook("/voice/unanswered", {**CALL, "DialCallStatus": status}))
        assert say.text == "Hello World"


def test_nobody_answering_goes_to_the_no_answer_url(caller, softphone):
    demo.put_parameters(
        softphone,
        demo.SSM_PATH,
        {"voice/no_answer_url": ("/twimlets/voicemail?Email=owner%40example.com", "String")},
    )
    parameters.reset()
    (redirect,) = twiml(caller.webhook("/voice/unanswered", {**CALL, "DialCallStatus": "busy"}))
    assert redirect.text == f"{EXECUTE_API}/twimlets/voicemail?Email=owner%40example.com"


def test_an_answered_call_hangs_up_when_it_ends(caller, softphone):
    root = twiml(caller.webhook("/voice/unanswered", {**CALL, "DialCallStatus": "completed"}))
    assert [element.tag for element in root] == ["Hangup"]


def test_without_ring_clients_voice_greets_as_before(caller, softphone):
    (say,) = twiml(caller.webhook("/voice", CALL))
    assert say.text == "Hello World"


def test_a_spent_daily_budget_holds_browser_calls_to_numbers(caller, softphone, frozen):
    from decimal import Decimal

    from chalicelib.aws import storage
    from chalicelib.guards import spend
    from devkit import resources

    demo.put_parameters(softphone, demo.SSM_PATH, {"outbound/daily_budget_usd": ("5", "String")})
    parameters.reset()
    (dial,) = twiml(caller.webhook("/client/voice", BROWSER_CALL))
    assert dial.tag == "Dial"
    table = storage.get_table(resources.names("dev")["MessagesTable"])
    day = spend.day_of(frozen.now)
    table.update(
        spend.day_key(day),
        "ADD #t :spent",
        names={"#t": "USD#total"},
        values={":spent": Decimal(5)},
    )
    call = {**BROWSER_CALL, "CallSid": "CA" + "c" * 32}
    assert refused(twiml(caller.webhook("/client/voice", call))).startswith("Today's calling")
    # browser users can still call each other: a Client leg reaches no toll destination
    (dial,) = twiml(caller.webhook("/client/voice", {**call, "To": "client:bob"}))
    assert dial[0].tag == "Client"
