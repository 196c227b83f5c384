"""Messaging that loses nothing: records, schedules, the worker, callbacks, keys and opt-outs.

Everything runs against the table and queue of infra/resources.json in the moto server and the
local Twilio API over HTTP; time moves through the app's injected clock, never by sleeping.
"""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.aws import storage
from devkit import demo
from tests.functional.conftest import EXECUTE_API, run_schedule

TO = "+15105551212"
OTHER = "+15105550000"


def send(caller, payload, **options):
    return caller.api("/messages", payload, **options)


def get(caller, path):
    return caller.api(path, method="GET")


def message(caller, message_id):
    response = get(caller, f"/messages/{message_id}")
    assert response["statusCode"] == 200, response["json"]
    return response["json"]


def statuses(record):
    return [h["status"] for h in record["history"]]


def status_callback(caller, sid, status, **extra):
    params = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": demo.ACCOUNT_SID,
        "To": TO,
        "From": demo.NUMBER,
        **extra,
    }
    return caller.webhook("/status/messages", params)


def tick():
    return run_schedule("dispatch_due")


# --- immediate sends ---------------------------------------------------------------------


def test_immediate_send_is_recorded_and_tracked(caller, twilio):
    response = send(caller, {"to": TO, "body": "Your table is ready"})
    assert response["statusCode"] == 201
    data = response["json"]
    assert data["status"] == "sent"
    record = message(caller, data["id"])
    assert record["sid"] == data["sid"]
    assert record["status"] == "sent"
    assert statuses(record) == ["queued", "sending", "sent"]
    assert record["created_at"].endswith("Z") and record["send_at"] is None
    (sent,) = twilio.messages
    assert sent["status_callback"] == f"{EXECUTE_API}/status/messages?id={data['id']}"


def test_status_callbacks_move_forward_only(caller):
    data = send(caller, {"to": TO, "body": "hi"})["json"]
    assert status_callback(caller, data["sid"], "queued")["statusCode"] == 200
    assert status_callback(caller, data["sid"], "read")["statusCode"] == 200
    record = message(caller, data["id"])
    assert record["status"] == "delivered"
    # Late and duplicate callbacks neither move it back nor enter the history.
    for late in ("sent", "sending", "failed", "delivered"):
        status_callback(caller, data["sid"], late)
    record = message(caller, data["id"])
    assert record["status"] == "delivered"
    assert statuses(record) == ["queued", "sending", "sent", "delivered"]


def test_failed_callback_records_the_error_code(caller):
    data = send(caller, {"to": TO, "body": "hi"})["json"]
    status_callback(caller, data["sid"], "undelivered", ErrorCode="30003")
    record = message(caller, data["id"])
    assert (record["status"], record["error_code"]) == ("undelivered", 30003)


def test_callback_for_unknown_sid_is_200_and_logged(caller, log_lines):
    response = status_callback(caller, "SM" + "f" * 32, "delivered")
    assert response["statusCode"] == 200
    assert any(line["message"] == "status callback for an unknown message" for line in log_lines())


def test_unsigned_status_callback_is_refused(caller):
    data = send(caller, {"to": TO, "body": "hi"})["json"]
    response = caller.webhook(
        "/status/messages", {"MessageSid": data["sid"], "MessageStatus": "failed"}, signature="x"
    )
    assert response["statusCode"] == 403
    assert message(caller, data["id"])["status"] == "sent"


def test_unknown_message_is_404(caller):
    assert get(caller, "/messages/nope")["statusCode"] == 404
    assert caller.api("/messages/nope", method="DELETE")["statusCode"] == 404


# --- idempotency -----------------------------------------------------------------------


def test_same_key_same_payload_replays_without_sending(caller, twilio):
    headers = {"Idempotency-Key": "order-1001"}
    first = send(caller, {"to": TO, "body": "hi"}, headers=headers)
    again = send(caller, {"body": "hi", "to": TO}, headers=headers)
    assert first["statusCode"] == again["statusCode"] == 201
    assert again["json"] == first["json"]
    assert again["headers"]["Idempotent-Replayed"] == "true"
    assert len(twilio.messages) == 1


def test_same_key_other_payload_is_409(caller, twilio):
    headers = {"Idempotency-Key": "order-1002"}
    send(caller, {"to": TO, "body": "hi"}, headers=headers)
    response = send(caller, {"to": TO, "body": "other"}, headers=headers)
    assert response["statusCode"] == 409
    assert response["json"]["error"]["field"] == "Idempotency-Key"
    assert len(twilio.messages) == 1


def test_validation_errors_free_the_key_and_twilio_4xx_is_kept(caller, twilio):
    headers = {"Idempotency-Key": "order-1003"}
    assert send(caller, {"to": "bad", "body": "hi"}, headers=headers)["statusCode"] == 400
    # Freed: the same key now serves a different, valid payload.
    assert send(caller, {"to": TO, "body": "hi"}, headers=headers)["statusCode"] == 201
    headers = {"Idempotency-Key": "order-1004"}
    refused = send(caller, {"to": "+15005550001", "body": "hi"}, headers=headers)
    assert refused["statusCode"] == 400 and refused["json"]["error"]["twilio_code"] == 21211
    requests_before = len(twilio.requests)
    replay = send(caller, {"to": "+15005550001", "body": "hi"}, headers=headers)
    assert replay["json"] == refused["json"]
    assert replay["headers"]["Idempotent-Replayed"] == "true"
    assert len(twilio.requests) == requests_before


@pytest.fixture
def impatient(monkeypatch, frozen):
    """The REST client gives up after 0.3 s: Twilio answering later stands in for an answer
    after the client's real timeout. The app's delays are its own (a check 60 s after an
    unclear answer, a retry 5 s after a 429): tests move the frozen clock past them."""
    from chalicelib.telephony import twilio_rest

    monkeypatch.setattr(twilio_rest, "REQUEST_TIMEOUT", 0.3)
    twilio_rest._client_cache.clear()
    return frozen


def until_the_check(twilio, jobs, frozen):
    """Time passes to a second before the worker's look-up of an unclear send: nothing runs and
    nothing is looked up or sent yet."""
    frozen.advance(59)
    assert jobs.drain() == 0
    assert not any(r.method == "GET" and r.path.endswith("/Messages.json") for r in twilio.requests)


def retry_until_final(caller, payload, key, attempts=3):
    """A client that sends again with the same key on any answer but 201/202."""
    answers = []
    for _ in range(attempts):
        answers.append(send(caller, payload, headers={"Idempotency-Key": key}))
        if answers[-1]["statusCode"] in (201, 202):
            break
    return answers


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize(
    "fault",
    [
        "late",
        "500-after-create",
        "drop-after-create",
        "504-then-create",
        "drop-then-create",
        "late-then-create",
    ],
)
def test_an_answer_that_never_comes_clearly_is_never_sent_twice(
    caller, twilio, jobs, impatient, fault
):
    # Twilio lists a "...-then-create" message only when the test says it has (create_after is
    # an hour): here 59 s after its unclear answer, a second before the worker looks it up.
    twilio.set_faults(late_seconds=0.6, create_after=3600)
    twilio.script_faults(fault)
    payload = {"to": TO, "body": "hi"}
    (first,) = retry_until_final(caller, payload, f"unclear-{fault}")
    assert first["statusCode"] == 202
    assert first["json"]["status"] == "sending" and first["json"]["unconfirmed"] is True
    # The client's retries replay that answer; the key is never freed for a second send.
    again = send(caller, payload, headers={"Idempotency-Key": f"unclear-{fault}"})
    assert (again["statusCode"], again["json"]) == (202, first["json"])
    assert again["headers"]["Idempotent-Replayed"] == "true"
    # "late", "...-after-create": created before the answer went wrong; else not yet listed.
    assert len(twilio.messages) == (0 if fault.endswith("-then-create") else 1)
    until_the_check(twilio, jobs, impatient)
    twilio.run_pending_creates()
    assert len(twilio.messages) == 1
    impatient.advance(2)
    assert jobs.drain() == 1  # the worker finds it in Twilio's list
    record = message(caller, first["json"]["id"])
    assert (record["status"], record["sid"]) == ("sent", twilio.messages[0]["sid"])
    assert len(twilio.messages) == 1


def test_a_body_twilio_rewrote_is_still_found_and_not_sent_again(caller, twilio, jobs, impatient):
    twilio.rewrite_bodies = True  # Smart Encoding and Link Shortening
    twilio.script_faults("drop-after-create")
    body = "\u201cSale\u201d \u2014 today only\u2026 https://shop.example.com/sale?x=1"
    sent = send(caller, {"to": TO, "body": body})["json"]
    assert sent["unconfirmed"] is True
    (stored,) = twilio.messages
    assert stored["body"].startswith('"Sale" - today only... https://twil.io/')
    impatient.advance(61)
    jobs.drain()
    assert message(caller, sent["id"])["sid"] == stored["sid"]
    assert len(twilio.messages) == 1


def test_a_lookup_passes_over_messages_that_are_already_ours(caller, twilio, jobs, impatient):
    first = send(caller, {"to": TO, "body": "same words"})["json"]
    assert first["status"] == "sent"
    twilio.script_faults("500")  # the second one never reached Twilio
    second = send(caller, {"to": TO, "body": "same words"})["json"]
    assert second["unconfirmed"] is True
    impatient.advance(61)
    jobs.drain()
    # Twilio's list holds the first one's twin: it is the first's, so the second is sent.
    assert message(caller, second["id"])["sid"] != first["sid"]
    assert len(twilio.messages) == 2


def test_an_ambiguous_send_twilio_never_got_is_sent_once_by_the_worker(
    caller, twilio, jobs, impatient
):
    twilio.script_faults("500")  # before anything is created, but a 500 cannot say so
    (first,) = retry_until_final(caller, {"to": TO, "body": "hi"}, "unclear-absent")
    assert first["statusCode"] == 202 and first["json"]["unconfirmed"] is True
    assert twilio.messages == []
    until_the_check(twilio, jobs, impatient)
    assert twilio.messages == []  # not sent again before the look-up
    impatient.advance(2)
    jobs.drain()
    assert message(caller, first["json"]["id"])["status"] == "sent"
    assert len(twilio.messages) == 1


def test_a_callback_before_any_answer_lands_by_our_id(caller, twilio, jobs, impatient):
    twilio.set_faults(late_seconds=0.6)
    twilio.script_faults("late")
    sent = send(caller, {"to": TO, "body": "hi"})["json"]
    assert sent["unconfirmed"] is True
    (created,) = twilio.messages  # "late": created at once, its answer after the client gave up
    # Twilio calls back to the URL it was given, which names our record.
    url = created["status_callback"].removeprefix(EXECUTE_API)
    assert url == f"/status/messages?id={sent['id']}"
    params = {"MessageSid": created["sid"], "MessageStatus": "delivered"}
    assert caller.webhook(url, {**params, "AccountSid": demo.ACCOUNT_SID})["statusCode"] == 200
    record = message(caller, sent["id"])
    assert (record["status"], record["sid"]) == ("delivered", created["sid"])
    impatient.advance(61)
    jobs.drain()  # the worker's check finds nothing left to do
    assert message(caller, sent["id"])["status"] == "delivered"
    assert len(twilio.messages) == 1


def deliver(caller, callbacks):
    """Hand the local Twilio's callbacks to the app as API Gateway events, with the signature
    the local Twilio computed."""
    from devkit.events import twilio_event

    for callback in callbacks:
        event = twilio_event(
            callback.url,
            callback.params,
            auth_token="unused",
            routes=caller.routes,
            signature=callback.signature,
        )
        assert caller.invoke(event)["statusCode"] == 200


def test_twilios_own_callbacks_twice_reversed_and_before_the_answer_land_once(
    caller, twilio, jobs, impatient, monkeypatch
):
    collected = []
    monkeypatch.setattr(twilio.callbacks, "transport", collected.append)
    twilio.callbacks.configure(delay=0.0, faults=("twice", "out-of-order", "early"))
    twilio.set_faults(late_seconds=0.6)
    twilio.script_faults("late")  # the answer, and so the SID, never reaches the app
    sent = send(caller, {"to": TO, "body": "hi"})["json"]
    assert sent["unconfirmed"] is True
    # The local Twilio's callback threads hand it four callbacks; the app sees none of them
    # until deliver() below, so this wait orders nothing against the app.
    assert wait_for(lambda: len(collected) == 4)
    deliver(caller, collected)
    record = message(caller, sent["id"])
    assert (record["status"], record["sid"]) == ("delivered", twilio.messages[0]["sid"])
    assert statuses(record).count("delivered") == 1 and "sent" not in statuses(record)
    impatient.advance(61)
    jobs.drain()
    assert len(twilio.messages) == 1


def test_callbacks_out_of_order_and_twice_move_forwards_only(caller, twilio):
    sent = send(caller, {"to": TO, "body": "hi"})["json"]
    url = twilio.messages[0]["status_callback"].removeprefix(EXECUTE_API)
    base = {"MessageSid": sent["sid"], "AccountSid": demo.ACCOUNT_SID}
    for state in ("delivered", "sent", "queued", "delivered", "failed"):
        response = caller.webhook(url, {**base, "MessageStatus": state})
        assert response["statusCode"] == 200
    record = message(caller, sent["id"])
    assert record["status"] == "delivered"
    assert statuses(record).count("delivered") == 1


@pytest.mark.parametrize("status", ["429", "503"])
def test_not_accepted_now_is_queued_not_failed_and_the_key_is_not_spent(
    caller, twilio, jobs, impatient, status
):
    twilio.script_faults(status)
    (first,) = retry_until_final(caller, {"to": TO, "body": "hi"}, f"busy-{status}")
    assert first["statusCode"] == 202 and first["json"]["status"] == "queued"
    assert twilio.messages == []
    impatient.advance(4)  # the worker's retry comes 5 s later, not before
    assert jobs.drain() == 0 and twilio.messages == []
    impatient.advance(2)
    jobs.drain()
    record = message(caller, first["json"]["id"])
    assert record["status"] == "sent" and "failed" not in statuses(record)
    assert len(twilio.messages) == 1
    replay = send(caller, {"to": TO, "body": "hi"}, headers={"Idempotency-Key": f"busy-{status}"})
    assert replay["json"] == first["json"] and len(twilio.messages) == 1


def test_concurrent_duplicates_never_send_twice(caller, twilio):
    # Twilio takes 0.3 s to answer the first, so the others arrive while its key is in use.
    twilio.latency = 0.3
    headers = {"Idempotency-Key": "order-1006"}
    results = []

    def post():
        results.append(send(caller, {"to": TO, "body": "once"}, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(5)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        twilio.latency = 0.0
    codes = sorted(r["statusCode"] for r in results)
    assert codes.count(201) >= 1
    assert codes.count(409) >= 1  # some did overlap the first: not only replays were tested
    assert set(codes) <= {201, 409}
    assert len(twilio.messages) == 1


def test_bad_idempotency_key_is_400(caller):
    response = send(caller, {"to": TO, "body": "hi"}, headers={"Idempotency-Key": "x" * 256})
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == "Idempotency-Key"


# --- scheduled messages ------------------------------------------------------------------


def test_scheduled_message_goes_out_at_its_time_not_before(caller, twilio, jobs, frozen):
    response = send(caller, {"to": TO, "body": "reminder", "send_at": _iso(frozen.now + 3600)})
    assert response["statusCode"] == 202
    data = response["json"]
    assert data["status"] == "scheduled" and data["send_at"].endswith("Z")
    tick()
    jobs.drain()
    assert twilio.messages == []
    frozen.advance(3600 - 61)  # not yet within the dispatcher's one-minute look-ahead
    tick()
    jobs.drain()
    assert message(caller, data["id"])["status"] == "scheduled"
    frozen.advance(61)
    tick()
    jobs.drain()
    record = message(caller, data["id"])
    assert record["status"] == "sent"
    assert statuses(record) == ["scheduled", "queued", "sending", "sent"]
    assert len(twilio.messages) == 1


def test_send_at_with_local_time_and_zone(caller, frozen):
    frozen.now = 1_780_000_000  # 2026-05-28T20:26:40Z
    payload = {
        "to": TO,
        "body": "x",
        "send_at": "2026-05-29T09:00:00",
        "timezone": "America/New_York",
    }
    assert send(caller, payload)["json"]["send_at"] == "2026-05-29T13:00:00.000Z"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"send_at": "2020-01-01T00:00:00Z"}, "send_at"),
        ({"send_at": "+30"}, "send_at"),
        ({"send_at": "2030-01-01T00:00:00"}, "timezone"),
        ({"send_at": "2030-01-01T00:00:00", "timezone": "Nowhere/City"}, "timezone"),
        ({"not_before": "09:00"}, "timezone"),
        ({"not_before": "9am", "timezone": "UTC"}, "not_before"),
    ],
)
def test_bad_schedules_are_400(caller, twilio, extra, field):
    response = send(caller, {"to": TO, "body": "x", **extra})
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == field
    assert twilio.messages == []


def test_schedule_bounds(caller, frozen):
    too_soon = send(caller, {"to": TO, "body": "x", "send_at": _iso(frozen.now + 30)})
    assert too_soon["statusCode"] == 400
    too_far = send(caller, {"to": TO, "body": "x", "send_at": _iso(frozen.now + 367 * 86400)})
    assert too_far["statusCode"] == 400


def test_quiet_hours_move_an_immediate_send(caller, twilio, frozen):
    frozen.now = 1_780_000_000  # 16:26 in New York
    payload = {
        "to": TO,
        "body": "x",
        "timezone": "America/New_York",
        "not_before": "09:00",
        "not_after": "12:00",
    }
    response = send(caller, payload)
    assert response["statusCode"] == 202
    assert response["json"]["send_at"] == "2026-05-29T13:00:00.000Z"
    assert twilio.messages == []


def test_cancel_scheduled_then_nothing_is_sent(caller, twilio, jobs, frozen):
    data = send(caller, {"to": TO, "body": "x", "send_at": _iso(frozen.now + 120)})["json"]
    first = caller.api(f"/messages/{data['id']}", method="DELETE")
    assert first["statusCode"] == 200 and first["json"]["status"] == "canceled"
    assert caller.api(f"/messages/{data['id']}", method="DELETE")["statusCode"] == 200
    frozen.advance(200)
    tick()
    jobs.drain()
    assert twilio.messages == []


def test_cancel_queued_message_is_never_sent(caller, twilio, jobs, frozen):
    data = send(caller, {"to": TO, "body": "x", "send_at": _iso(frozen.now + 120)})["json"]
    frozen.advance(120)
    tick()
    assert caller.api(f"/messages/{data['id']}", method="DELETE")["json"]["status"] == "canceled"
    jobs.drain()
    assert twilio.messages == []


def test_cancel_after_sending_is_409(caller):
    data = send(caller, {"to": TO, "body": "x"})["json"]
    response = caller.api(f"/messages/{data['id']}", method="DELETE")
    assert response["statusCode"] == 409


def test_overlapping_dispatch_runs_enqueue_once(caller, twilio, jobs, frozen):
    ids = [
        send(caller, {"to": f"+1510555{i:04d}", "body": "x", "send_at": _iso(frozen.now + 120)})[
            "json"
        ]["id"]
        for i in range(20)
    ]
    frozen.advance(121)
    runs = [threading.Thread(target=tick) for _ in range(3)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert jobs.drain() == 20
    assert len(twilio.messages) == 20
    assert {message(caller, i)["status"] for i in ids} == {"sent"}


def test_claimed_but_not_enqueued_is_requeued_after_five_minutes(
    caller, app, twilio, jobs, frozen, monkeypatch
):
    from chalicelib.aws import jobs as job_module

    data = send(caller, {"to": TO, "body": "x", "send_at": _iso(frozen.now + 120)})["json"]
    frozen.advance(120)

    def broken(*args, **kwargs):
        raise job_module.JobQueueError("queue down")

    with monkeypatch.context() as patch:
        patch.setattr(job_module.queue, "send_many", broken)
        tick()
    assert message(caller, data["id"])["status"] == "queued"
    assert jobs.drain() == 0
    frozen.advance(299)
    tick()
    assert jobs.drain() == 0
    frozen.advance(2)
    tick()
    jobs.drain()
    assert message(caller, data["id"])["status"] == "sent"
    assert len(twilio.messages) == 1


# --- the worker against Twilio's answers --------------------------------------------------


def scheduled(caller, frozen, to=TO, body="x"):
    data = send(caller, {"to": to, "body": body, "send_at": _iso(frozen.now + 61)})["json"]
    frozen.advance(61)
    tick()
    return data["id"]


@pytest.mark.parametrize(("to", "code"), [("+15005550001", 21211), ("+15005550009", 21614)])
def test_permanent_errors_fail_at_once(caller, jobs, frozen, to, code):
    message_id = scheduled(caller, frozen, to=to)
    jobs.drain()
    record = message(caller, message_id)
    assert (record["status"], record["error_code"]) == ("failed", code)


def test_unsubscribed_21610_records_the_opt_out(caller, jobs, frozen):
    message_id = scheduled(caller, frozen, to="+15005550004")
    jobs.drain()
    assert message(caller, message_id)["status"] == "opted_out"
    response = send(caller, {"to": "+15005550004", "body": "again"})
    assert response["statusCode"] == 409
    assert response["json"]["error"]["reason"] == "opted_out"


@pytest.mark.parametrize("status", [429, 503])
def test_not_accepted_is_retried_then_sent_once(caller, twilio, jobs, frozen, status):
    message_id = scheduled(caller, frozen)
    twilio.set_faults(rate=1.0, statuses=(status,))
    # The retry is a new queue message at its slot; the one in hand is done (not redelivered).
    assert jobs.poll_once() == (1, 0)
    assert message(caller, message_id)["status"] == "queued"
    twilio.set_faults(rate=0.0)
    frozen.advance(10)
    jobs.drain()
    assert message(caller, message_id)["status"] == "sent"
    assert len(twilio.messages) == 1


def test_a_ten_minute_429_storm_loses_nothing(caller, twilio, jobs, frozen):
    message_id = scheduled(caller, frozen)
    twilio.set_faults(rate=1.0, statuses=(429,))
    storm_ends = frozen.now + 600
    receives = 0
    while frozen.now < storm_ends:
        receives += jobs.poll_once()[0]
        frozen.advance(30)
    assert receives > 5  # more than the queue's receive count and the attempt bound allow
    assert message(caller, message_id)["status"] == "queued"
    twilio.set_faults(rate=0.0)
    # The last retry of the storm may be anywhere up to the capped backoff with its jitter.
    from chalicelib.worker import sender

    frozen.advance(sender._BACKOFF_CAP * 1.5 + 1)
    jobs.drain()
    assert message(caller, message_id)["status"] == "sent"
    assert len(twilio.messages) == 1


def test_not_accepted_for_over_an_hour_fails_and_is_never_sent(caller, twilio, jobs, frozen):
    message_id = scheduled(caller, frozen)
    twilio.set_faults(rate=1.0, statuses=(503,))
    for _ in range(20):
        jobs.poll_once()
        frozen.advance(300)
    record = message(caller, message_id)
    assert record["status"] == "failed"
    assert record["error_message"].startswith("not_accepted")
    twilio.set_faults(rate=0.0)
    assert jobs.drain() == 0
    assert twilio.messages == []


def test_ambiguous_500_looks_up_before_sending_again(caller, twilio, jobs, frozen):
    message_id = scheduled(caller, frozen)
    twilio.set_faults(rate=1.0, statuses=(500,))
    jobs.poll_once()
    assert message(caller, message_id)["status"] == "sending"
    twilio.set_faults(rate=0.0)
    frozen.advance(60)
    jobs.drain()
    assert message(caller, message_id)["status"] == "sent"
    assert len(twilio.messages) == 1
    assert any(r.method == "GET" and r.path.endswith("/Messages.json") for r in twilio.requests)


def test_timeout_after_twilio_accepted_is_not_sent_twice(caller, twilio, jobs, impatient):
    message_id = scheduled(caller, impatient)
    # Twilio accepts it but answers after the client gave up, and lists it only when the test
    # says it has: after the timeout, before the worker's look-up.
    twilio.set_faults(late_seconds=0.6, create_after=3600)
    twilio.script_faults("late-then-create")
    assert jobs.poll_once() == (1, 0)
    assert message(caller, message_id)["status"] == "sending"
    assert twilio.messages == []
    until_the_check(twilio, jobs, impatient)
    assert twilio.run_pending_creates() == 1
    impatient.advance(2)
    jobs.drain()
    record = message(caller, message_id)
    assert record["status"] == "sent"
    assert record["sid"] == twilio.messages[0]["sid"]
    assert len(twilio.messages) == 1


def test_a_job_that_crashes_on_every_receive_is_not_lost(caller, twilio, jobs, frozen, aws_faults):
    message_id = scheduled(caller, frozen)
    # The worker's claim fails on every receive (5 SDK attempts each) until the queue gives up.
    aws_faults.script("dynamodb:UpdateItem", ["500"] * 25, match="claim = :token")
    for _ in range(5):
        assert jobs.poll_once(replay_failures=True) == (1, 1)
    assert jobs.drain(replay_failures=True) == 0  # in the dead-letter queue now
    aws_faults.reset()
    assert message(caller, message_id)["status"] == "queued"
    frozen.advance(301)
    tick()  # the dispatcher's sweep of messages left queued
    jobs.drain()
    assert message(caller, message_id)["status"] == "sent"
    assert len(twilio.messages) == 1


def test_opt_out_after_scheduling_ends_opted_out(caller, twilio, jobs, frozen):
    data = send(caller, {"to": TO, "body": "x", "send_at": _iso(frozen.now + 120)})["json"]
    caller.webhook("/sms", inbound("SM" + "1" * 32, TO, "Stop."))
    frozen.advance(120)
    tick()
    jobs.drain()
    assert message(caller, data["id"])["status"] == "opted_out"
    assert twilio.messages == []


def test_reconcile_settles_messages_stuck_in_sending(caller, app, twilio, jobs, frozen):
    from chalicelib.messaging import deps, messages

    found_id = scheduled(caller, frozen, body="already at twilio")
    lost_id = scheduled(caller, frozen, body="never reached twilio")
    table = deps.table()
    # Two workers died: one after Twilio accepted, one before calling it.
    for message_id in (found_id, lost_id):
        messages.move(
            table,
            message_id,
            "sending",
            sources=("queued",),
            set_fields={"attempt_started_at": time.time()},
        )
    twilio_client = deps.twilio()
    twilio_client.send_message(to=TO, body="already at twilio", sender=demo.NUMBER)
    frozen.advance(601)
    counts = run_schedule("reconcile_sending")
    assert counts == {"found": 1, "requeued": 1, "calls_found": 0, "calls_not_placed": 0}
    jobs.drain()
    assert message(caller, found_id)["status"] == "sent"
    assert message(caller, lost_id)["status"] == "sent"
    assert sorted(m["body"] for m in twilio.messages) == [
        "already at twilio",
        "never reached twilio",
    ]


# --- inbound and opt-out keywords ------------------------------------------------------


def inbound(sid, sender, body, **extra):
    return {
        "MessageSid": sid,
        "AccountSid": demo.ACCOUNT_SID,
        "From": sender,
        "To": demo.NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


@pytest.mark.parametrize(
    "body", ["STOP", "stop", " Stop! ", "unsubscribe.", "QUIT", "end", "revoke", "OptOut"]
)
def test_stop_keywords_opt_out_and_start_opts_back_in(caller, body):
    response = caller.webhook("/sms", inbound("SM" + "2" * 32, TO, body))
    assert response["body"].endswith("<Response />")
    assert send(caller, {"to": TO, "body": "x"})["json"]["error"]["reason"] == "opted_out"
    caller.webhook("/sms", inbound("SM" + "3" * 32, TO, "start"))
    assert send(caller, {"to": TO, "body": "x"})["statusCode"] == 201


def test_a_replayed_old_start_never_undoes_a_later_stop(caller):
    stop, start, again = ("SM" + c * 32 for c in "abc")
    caller.webhook("/sms", inbound(stop, TO, "STOP"))
    caller.webhook("/sms", inbound(start, TO, "START"))
    caller.webhook("/sms", inbound(again, TO, "STOP"))
    for _ in range(2):  # Twilio's retry, or a captured request sent again
        assert caller.webhook("/sms", inbound(start, TO, "START"))["statusCode"] == 200
    assert send(caller, {"to": TO, "body": "x"})["json"]["error"]["reason"] == "opted_out"


def test_a_stop_without_a_sender_records_nothing(caller):
    params = inbound("SM" + "d" * 32, TO, "STOP")
    del params["From"]
    assert caller.webhook("/sms", params)["statusCode"] == 200
    from chalicelib.messaging import deps, optouts

    assert not optouts.is_opted_out(deps.table(), "")
    assert send(caller, {"to": TO, "body": "x"})["statusCode"] == 201


def test_keywords_only_as_the_whole_message(caller):
    caller.webhook("/sms", inbound("SM" + "4" * 32, TO, "please stop calling me"))
    assert send(caller, {"to": TO, "body": "x"})["statusCode"] == 201


def test_help_reply_and_configured_stop_reply(caller, ssm):
    ssm.put_parameter(Name=f"{demo.SSM_PATH}/sms/stop_reply", Value="Bye!", Type="String")
    ssm.put_parameter(Name=f"{demo.SSM_PATH}/sms/auto_reply", Value="Thanks", Type="String")
    help_reply = caller.webhook("/sms", inbound("SM" + "5" * 32, TO, "help"))
    assert "Reply STOP to unsubscribe" in help_reply["body"]
    assert "Thanks" not in help_reply["body"]
    stop = caller.webhook("/sms", inbound("SM" + "6" * 32, OTHER, "STOP"))
    assert "<Message>Bye!</Message>" in stop["body"]
    assert "Thanks" not in stop["body"]


def test_inbound_stored_once_listed_and_forwarded_once(caller, ssm, twilio, jobs):
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/sms/forward_to", Value=f"{OTHER}, +15105559999", Type="String"
    )
    params = inbound(
        "SM" + "7" * 32,
        TO,
        "Is the shop open?",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1",
    )
    for _ in range(3):  # Twilio retries the webhook
        assert caller.webhook("/sms", params)["statusCode"] == 200
    caller.webhook("/sms", inbound("SM" + "8" * 32, TO, "second"))
    jobs.drain()
    forwarded = sorted((m["to"], m["body"]) for m in twilio.messages)
    assert forwarded == [
        (OTHER, "From +15105551212: Is the shop open?"),
        (OTHER, "From +15105551212: second"),
        ("+15105559999", "From +15105551212: Is the shop open?"),
        ("+15105559999", "From +15105551212: second"),
    ]
    listing = get(caller, "/inbound?limit=1")["json"]
    assert [m["body"] for m in listing["messages"]] == ["second"]
    rest = get(caller, f"/inbound?limit=1&next={listing['next']}")["json"]
    assert [m["body"] for m in rest["messages"]] == ["Is the shop open?"]
    assert rest["messages"][0]["media_urls"] == ["https://api.twilio.com/media/ME1"]
    assert get(caller, "/inbound?since=2100-01-01T00:00:00Z")["json"]["messages"] == []
    assert get(caller, "/inbound?next=garbage")["statusCode"] == 400


def test_inbound_fails_visibly_when_storage_is_down(caller, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    storage.reset()
    # Parameters are cached from an earlier call in this container; only DynamoDB is down.
    caller.webhook("/voice", {"CallSid": "CA1"})
    response = caller.webhook("/sms", inbound("SM" + "9" * 32, TO, "hello"))
    assert response["statusCode"] == 500


# --- calls -----------------------------------------------------------------------------


def test_call_record_follows_status_callbacks(caller, twilio):
    data = caller.api("/calls", {"to": TO})["json"]
    assert twilio.calls[0]["status_callback"] == f"{EXECUTE_API}/status/calls?id={data['id']}"
    for status in ("initiated", "ringing", "in-progress", "completed", "ringing"):
        params = {"CallSid": data["sid"], "CallStatus": status}
        caller.webhook(f"/status/calls?id={data['id']}", params)
    # Callbacks without our id (calls placed before ids were in the URL) still find it by SID.
    caller.webhook("/status/calls", {"CallSid": data["sid"], "CallStatus": "ringing"})
    record = get(caller, f"/calls/{data['id']}")["json"]
    assert record["status"] == "completed"
    assert statuses(record) == ["queued", "initiated", "ringing", "in-progress", "completed"]
    assert get(caller, "/calls/unknown")["statusCode"] == 404


def _iso(seconds: float) -> str:
    from chalicelib.core import clock

    return clock.iso(seconds)


def test_callback_before_the_sid_is_stored_is_applied_when_it_lands(
    caller, twilio, jobs, frozen, monkeypatch
):
    from chalicelib.telephony.twilio_rest import TwilioRest

    real_send = TwilioRest.send_message

    def send_then_twilio_calls_back(self, **options):
        # Twilio answers, and its delivered callback overtakes the worker's write of the SID.
        result = real_send(self, **options)
        assert status_callback(caller, result["sid"], "delivered")["statusCode"] == 200
        return result

    message_id = scheduled(caller, frozen)
    monkeypatch.setattr(TwilioRest, "send_message", send_then_twilio_calls_back)
    jobs.drain()
    record = message(caller, message_id)
    assert record["status"] == "delivered"
    assert statuses(record)[-2:] == ["sent", "delivered"]


# --- pacing of every send ----------------------------------------------------------------


def test_every_way_to_the_queue_takes_a_pacing_slot(caller, ssm, twilio, jobs, frozen, monkeypatch):
    from chalicelib.core import settings
    from chalicelib.messaging import deps, pacing

    monkeypatch.setenv("SWITCHBOARD_SEND_RATE", "1")
    settings.reset()
    table = deps.table()

    def reserved():
        """Seconds of sending reserved from now on."""
        return round((table.get(pacing.LIMITER_KEY) or {}).get("next_ms", 0) / 1000 - frozen.now)

    # Immediate API sends: the first two fit the second of slack, the third waits its slot.
    answers = [send(caller, {"to": TO, "body": f"now {i}"}) for i in range(3)]
    assert [a["statusCode"] for a in answers] == [201, 201, 202]
    assert answers[2]["json"]["status"] == "queued"
    assert reserved() == 3
    # Forwards of an inbound message, one slot per target.
    ssm.put_parameter(
        Name=f"{demo.SSM_PATH}/sms/forward_to", Value=f"{OTHER}, +15105559999", Type="String"
    )
    from chalicelib.aws import parameters

    parameters.reset()
    caller.webhook("/sms", inbound("SM" + "9" * 32, TO, "fwd"))
    assert reserved() == 5


def test_a_retry_takes_a_pacing_slot_no_sooner_than_its_backoff(caller, twilio, jobs, frozen):
    from chalicelib.messaging import deps, pacing

    message_id = scheduled(caller, frozen)
    twilio.set_faults(rate=1.0, statuses=(429,))
    jobs.poll_once(replay_failures=True)
    assert message(caller, message_id)["status"] == "queued"
    limiter = deps.table().get(pacing.LIMITER_KEY)
    assert limiter["next_ms"] / 1000 >= frozen.now + 2.5  # backoff(1) is 5 s x [0.5, 1.5]
