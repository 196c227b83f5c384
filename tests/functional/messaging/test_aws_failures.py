"""The money path when AWS fails at the wrong moment: once a create may have reached Twilio, the
Idempotency-Key's outcome is that record, whatever DynamoDB or the parameter store do next.

Faults come from the fault layer in front of the moto server (devkit/aws_faults.py): AWS's own
error answers, and writes applied whose answer is lost.
"""

from __future__ import annotations

import pytest

from chalicelib.core import clock
from tests.functional.conftest import run_schedule
from tests.functional.messaging.test_messaging import message, send

TO = "+15105551212"
PAYLOAD = {"to": TO, "body": "Your table is ready"}
# Both attempts of a webhook-patience call fail: the SDK gives up and the app sees the failure.
FAILS = {
    "500": ["500", "500"],
    "throttle": ["throttle", "throttle"],
    "lost": ["lost", "lost"],
}


def retrying_client(caller, payload, key, *, attempts=4, path="/messages"):
    """A client that sends again with the same key on any answer but 2xx."""
    answers = []
    for _ in range(attempts):
        answers.append(caller.api(path, payload, headers={"Idempotency-Key": key}))
        if 200 <= answers[-1]["statusCode"] < 300:
            break
    return answers


def ids(answers):
    return {a["json"]["id"] for a in answers if a["json"] and "id" in a["json"]}


@pytest.mark.parametrize("fault", sorted(FAILS))
def test_r1_a_sid_write_failing_after_twilio_accepted_never_sends_again(
    caller, twilio, aws_faults, fault
):
    aws_faults.script("dynamodb:UpdateItem", FAILS[fault], match='"sid"')
    answers = retrying_client(caller, PAYLOAD, f"r1-{fault}")
    assert answers[-1]["statusCode"] in (201, 202)
    assert len(ids(answers)) == 1
    (sent,) = twilio.messages
    # More retries later replay the same answer, never a second message.
    again = send(caller, PAYLOAD, headers={"Idempotency-Key": f"r1-{fault}"})
    assert again["json"]["id"] in ids(answers)
    assert len(twilio.messages) == 1
    assert message(caller, again["json"]["id"])["to"] == TO
    assert sent["to"] == TO


@pytest.mark.parametrize("fault", sorted(FAILS))
def test_r2_a_call_sid_write_failing_after_twilio_placed_it_never_calls_again(
    caller, twilio, aws_faults, fault
):
    aws_faults.script("dynamodb:UpdateItem", FAILS[fault], match=":sid")
    answers = retrying_client(caller, {"to": TO, "say": "hello"}, f"r2-{fault}", path="/calls")
    assert answers[-1]["statusCode"] in (201, 202)
    assert len(ids(answers)) == 1
    assert len(twilio.calls) == 1


def test_r3_keeping_the_answer_failing_never_sends_again_after_the_lock(
    caller, twilio, jobs, aws_faults, frozen
):
    aws_faults.script("dynamodb:UpdateItem", ["500", "500"], match="answer = :answer")
    first = send(caller, PAYLOAD, headers={"Idempotency-Key": "r3"})
    assert first["statusCode"] == 201
    frozen.advance(121)  # the claim's lock has expired: a retry takes it over
    again = send(caller, PAYLOAD, headers={"Idempotency-Key": "r3"})
    assert again["statusCode"] in (201, 202)
    assert again["json"]["id"] == first["json"]["id"]
    assert len(twilio.messages) == 1
    frozen.advance(3600)
    run_schedule("reconcile_sending")
    jobs.drain()
    assert len(twilio.messages) == 1


def test_r3_a_claim_whose_answer_was_lost_is_still_ours(caller, twilio, aws_faults):
    # The claim reached DynamoDB, the answer did not: the SDK's retry meets our own claim.
    aws_faults.script("dynamodb:PutItem", ["lost"], match="in_progress")
    first = send(caller, PAYLOAD, headers={"Idempotency-Key": "r3-claim"})
    assert first["statusCode"] == 201, first["json"]
    assert len(twilio.messages) == 1


def test_a_record_write_whose_answer_was_lost_still_sends_once(caller, twilio, aws_faults):
    aws_faults.script("dynamodb:PutItem", ["lost"], match='"msg#')
    first = send(caller, PAYLOAD)
    assert first["statusCode"] == 201, first["json"]
    assert len(twilio.messages) == 1
    assert message(caller, first["json"]["id"])["status"] == "sent"


@pytest.mark.parametrize("fault", ["500", "throttle"])
def test_r4_a_broadcast_write_failing_midway_completes_the_same_broadcast(
    caller, twilio, jobs, aws_faults, fault
):
    recipients = [f"+1510555{n:04d}" for n in range(60)]
    payload = {"to": recipients, "body": "We open at 9 tomorrow"}
    aws_faults.script("dynamodb:BatchWriteItem", ["ok", fault, fault, fault, fault, fault])
    answers = retrying_client(caller, payload, f"r4-{fault}", path="/broadcasts")
    assert answers[0]["statusCode"] == 503
    assert answers[-1]["statusCode"] == 202
    assert len(ids(answers)) == 1
    run_schedule("dispatch_due")
    jobs.drain()
    sent_to = sorted(m["to"] for m in twilio.messages)
    assert sent_to == sorted(recipients)


@pytest.fixture
def extension_parameters(ssm, app, monkeypatch):
    import boto3

    from chalicelib.aws import parameters
    from devkit.ssm_extension import ExtensionServer

    token = "local-demo-session-token"
    with ExtensionServer(boto3.client("ssm"), token=token) as server:
        monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.port))
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        parameters.reset()
        yield server


def test_r17_credentials_unreadable_before_the_create_send_once_and_never_orphan(
    caller, twilio, jobs, aws_faults, extension_parameters, frozen
):
    # Parameters are read by name, on demand: the account SID is first needed for the create.
    aws_faults.script("ssm:GetParameter", ["500"] * 6, match="account_sid")
    answers = retrying_client(caller, PAYLOAD, "r17")
    assert answers[0]["statusCode"] == 503
    assert answers[-1]["statusCode"] == 201
    assert len(twilio.messages) == 1
    frozen.advance(3600)
    run_schedule("reconcile_sending")
    jobs.drain()
    assert len(twilio.messages) == 1


def inbound_stop(sid, body="STOP"):
    from devkit import demo

    return {
        "MessageSid": sid,
        "AccountSid": demo.ACCOUNT_SID,
        "From": TO,
        "To": demo.NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


@pytest.mark.parametrize("fault", ["500", "lost"])
def test_r7_a_stop_is_never_lost_when_its_opt_out_write_fails(caller, twilio, aws_faults, fault):
    # Whichever write records the opt-out fails on both SDK attempts; Twilio then retries the
    # webhook, the same signed request, as it does after a 500 or a connection it lost.
    for operation in ("dynamodb:PutItem", "dynamodb:TransactWriteItems"):
        aws_faults.script(operation, [fault, fault], match="optout#")
    stop = inbound_stop("SM" + "5" * 32)
    for _ in range(3):  # Twilio's retries
        if caller.webhook("/sms", stop)["statusCode"] == 200:
            break
    response = send(caller, PAYLOAD)
    assert response["statusCode"] == 409, response["json"]
    assert response["json"]["error"]["reason"] == "opted_out"
    assert twilio.messages == []


def test_a_webhook_whose_replay_marker_answer_was_lost_still_acts(caller, aws_faults):
    # The marker reached DynamoDB, its answer did not: the SDK's retry meets our own marker.
    aws_faults.script("dynamodb:PutItem", ["lost"], match="replay#")
    sid = "SM" + "6" * 32
    assert caller.webhook("/sms", inbound_stop(sid, body="Running late"))["statusCode"] == 200
    listed = caller.api("/inbound", method="GET")["json"]
    assert [m["sid"] for m in listed["messages"]] == [sid]


@pytest.mark.parametrize("fault", ["504-then-create", "drop-then-create", "late-then-create"])
def test_r6_a_message_twilio_lists_only_later_is_found_not_sent_again(
    caller, twilio, jobs, frozen, monkeypatch, fault
):
    from chalicelib.telephony import twilio_rest
    from tests.functional.messaging.test_messaging import scheduled

    monkeypatch.setattr(twilio_rest, "REQUEST_TIMEOUT", 0.3)
    twilio_rest._client_cache.clear()
    message_id = scheduled(caller, frozen)
    # Twilio answers unclearly and lists the message only when the test says it has.
    twilio.set_faults(late_seconds=0.5, create_after=3600)
    twilio.script_faults(fault)
    jobs.poll_once()
    assert twilio.messages == []
    frozen.advance(20)  # past a retry's first backoff (2.5-7.5 s), short of a minute
    jobs.drain()
    assert twilio.run_pending_creates() == 1  # twenty seconds after its answer
    frozen.advance(60)
    jobs.drain()
    assert len(twilio.messages) == 1
    record = message(caller, message_id)
    assert (record["status"], record["sid"]) == ("sent", twilio.messages[0]["sid"])


def test_a_flag_from_an_earlier_unclear_attempt_never_lets_a_second_job_send_alongside(
    caller, twilio, jobs, frozen
):
    import json

    from chalicelib.messaging import deps, messages
    from tests.functional.messaging.test_messaging import scheduled

    message_id = scheduled(caller, frozen)
    # Queued with the flag of an unclear outcome still on it: the state an API retry's
    # `_check_later` leaves when it flags a record whose worker attempt then hears 429.
    deps.table().update(
        messages.key(message_id), "SET ambiguous = :t", values={":t": True}, returning=False
    )
    # SQS delivers at least once: a second copy of the send job arrives with the retry.
    jobs.sqs.send_message(
        QueueUrl=jobs.url, MessageBody=json.dumps({"kind": "send", "payload": {"id": message_id}})
    )
    frozen.advance(60)
    # One job's create is in flight (Twilio answers in half a second, and lists it later) while
    # the other runs beside it in the same batch.
    twilio.set_faults(late_seconds=0.5, create_after=3600)
    twilio.script_faults("late-then-create")
    assert jobs.poll_once()[0] == 2
    twilio.run_pending_creates()
    assert len(twilio.messages) == 1


def test_a_retry_that_cannot_take_the_claim_over_never_frees_it(
    caller, twilio, jobs, aws_faults, frozen
):
    # The first request's record reached DynamoDB, its answer did not, and the SDK's retry
    # failed: 503, the claim unlocked (its generation kept) for the client's retry.
    aws_faults.script("dynamodb:PutItem", ["lost", "500"], match='"msg#')
    assert send(caller, PAYLOAD, headers={"Idempotency-Key": "takeover"})["statusCode"] == 503
    # The retry's takeover of that claim fails: that request owns nothing and frees nothing.
    aws_faults.script("dynamodb:UpdateItem", ["500", "500"], match="locked_until = :until")
    assert send(caller, PAYLOAD, headers={"Idempotency-Key": "takeover"})["statusCode"] == 503
    answer = send(caller, PAYLOAD, headers={"Idempotency-Key": "takeover"})
    assert answer["statusCode"] in (201, 202), answer["json"]
    for _ in range(3):  # the worker's lookup, then reconcile after any stuck attempt
        frozen.advance(700)
        run_schedule("reconcile_sending")
        jobs.drain()
    assert len(twilio.messages) == 1


@pytest.mark.parametrize("when", ["now", "scheduled"])
def test_a_retry_that_took_the_claim_over_and_failed_early_never_frees_it(
    caller, twilio, jobs, aws_faults, frozen, when
):
    # Seen in the fault storm: the first request's record write was applied, its answer lost,
    # and the SDK's retry failed (503, the claim unlocked). The retry took the claim over, then
    # failed before its own write (the opt-out read): it must not free a claim whose earlier
    # run may have written the record, or the next retry derives a new id and sends again.
    payload = dict(PAYLOAD)
    if when == "scheduled":
        payload["send_at"] = clock.iso(frozen.now + 600)
    aws_faults.script("dynamodb:PutItem", ["lost", "500"], match='"msg#')
    assert send(caller, payload, headers={"Idempotency-Key": "early"})["statusCode"] == 503
    aws_faults.script("dynamodb:GetItem", ["500", "500"], match="optout#")
    assert send(caller, payload, headers={"Idempotency-Key": "early"})["statusCode"] == 503
    answers = retrying_client(caller, payload, "early")
    assert answers[-1]["statusCode"] in (201, 202), answers[-1]["json"]
    for _ in range(3):  # the worker's lookup, then reconcile after any stuck attempt
        frozen.advance(700)
        run_schedule("dispatch_due")
        run_schedule("reconcile_sending")
        jobs.drain()
    assert len(twilio.messages) == 1


def test_a_stray_copy_of_a_job_never_looks_an_unclear_send_up_before_its_minute(
    caller, twilio, jobs, frozen
):
    import json

    from tests.functional.messaging.test_messaging import scheduled

    message_id = scheduled(caller, frozen)
    twilio.set_faults(create_after=3600)
    twilio.script_faults("drop-then-create")  # unclear; Twilio lists it only later
    jobs.poll_once()
    # A second copy of the send job (a SendMessageBatch whose answer was lost and was sent
    # again by the SDK) comes five seconds later, well before the lookup's minute.
    jobs.sqs.send_message(
        QueueUrl=jobs.url, MessageBody=json.dumps({"kind": "send", "payload": {"id": message_id}})
    )
    frozen.advance(5)
    jobs.drain()
    assert twilio.run_pending_creates() == 1  # twenty seconds after the answer, listed
    frozen.advance(60)
    jobs.drain()
    assert len(twilio.messages) == 1
    assert message(caller, message_id)["status"] == "sent"


def test_r5_an_unclear_last_attempt_is_looked_up_not_failed(
    caller, twilio, jobs, frozen, monkeypatch
):
    from chalicelib.core import settings
    from tests.functional.messaging.test_messaging import scheduled

    monkeypatch.setenv("SWITCHBOARD_SEND_MAX_ATTEMPTS", "1")
    settings.reset()
    message_id = scheduled(caller, frozen)
    twilio.script_faults("500-after-create")  # Twilio has it; its answer says nothing clear
    jobs.poll_once()
    assert message(caller, message_id)["status"] == "sending"  # not failed: not looked up yet
    frozen.advance(60)
    jobs.drain()
    record = message(caller, message_id)
    assert (record["status"], record["sid"]) == ("sent", twilio.messages[0]["sid"])
    assert len(twilio.messages) == 1
