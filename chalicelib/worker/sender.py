"""The queue worker's send: claim a queued message, check opt-outs, call Twilio, record the result.

Outcomes by Twilio's answer:
- accepted: `sent` with its SID;
- 429 or 503 (not accepted): back to `queued`, retried with exponential backoff and jitter for
  up to NOT_ACCEPTED_FOR from the first attempt (nothing was created, so time, not a count, is
  the bound);
- timeout, connection error, other 5xx (ambiguous): stays `sending`, flagged; no sooner than
  CHECK_UNCLEAR_AFTER the Messages list is searched and the message sent again only if absent
  (an unclear answer is never `failed` before that search);
- credentials refused: the operator's problem, retried like "not accepted", logged as an error;
- other 4xx: `failed` with Twilio's code at once; 21610 also records the opt-out (`opted_out`).

Every retry is a new queue message at its pacing slot, not a redelivery of the old one: the
queue's receive count (and its dead-letter queue) is left to jobs that crash.

Before calling Twilio, the message's quiet hours are checked again (a retry can come after its
window closed): outside them it goes back to `scheduled` for the next opening, no attempt counted.
"""

from __future__ import annotations

import contextlib
import logging
import random
from typing import Any

from chalicelib.aws import jobs, parameters
from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock, settings
from chalicelib.core.errors import StorageError
from chalicelib.guards import destinations
from chalicelib.messaging import deps, messages, optouts, pacing, status
from chalicelib.telephony.twilio_rest import (
    AMBIGUOUS,
    REFUSED,
    TwilioError,
    TwilioRequestError,
    TwilioRest,
)
from chalicelib.worker import holds, quiet_hours

logger = logging.getLogger(__name__)

UNSUBSCRIBED = 21610
# A job may come this much before its pacing slot: SQS delays are whole seconds, rounded.
SLOT_EARLY = 1.0
_BACKOFF_BASE = 5.0
_BACKOFF_CAP = 300.0
# Twilio not taking a message (429, 503) is retried this long from its first attempt.
NOT_ACCEPTED_FOR = 3600.0


def backoff(attempt: int) -> float:
    """Seconds before retry number attempt: exponential, capped, with full jitter around it."""
    doubled = _BACKOFF_BASE * 2 ** min(max(0, attempt - 1), 16)  # past the cap long before 2**16
    return min(_BACKOFF_CAP, doubled) * random.uniform(0.5, 1.5)


def send_job(payload: dict[str, Any]) -> None:
    """Job "send": deliver message payload["id"] once.

    Raises:
        RetryLater: Twilio did not take it this time; the queue redelivers after the backoff.
    """
    with contextlib.suppress(_Stop):
        _send(payload)


def _send(payload: dict[str, Any]) -> None:
    config = settings.load()
    table = deps.table(config)
    message_id = str(payload["id"])
    now = clock.now()
    wait = float(payload.get("slot") or 0) - now
    if wait > SLOT_EARLY:
        _hold_for_slot(payload, wait)
        return
    token = messages.new_id()
    try:
        claimed = _claim(table, message_id, now, token)
    except ConditionFailedError as exc:
        record = exc.current
        if record is not None and record.get("claim") == token:
            claimed = record  # our claim, applied, its answer lost and retried by the SDK
            _attempt(table, claimed, config)
            return
        if record is None:
            logger.warning("send job for an unknown message", extra={"id": message_id})
            return
        if record["status"] == "queued" and record.get("send_at", 0) > now:
            # Enqueued early with a capped delay: wait without counting an attempt.
            raise jobs.RetryLater(record["send_at"] - now, "not due yet") from None
        if record["status"] != "sending" or not record.get("ambiguous"):
            return  # already sent, canceled, opted out, or in another worker's hands
        if float(record.get("state_at") or 0) > now + SLOT_EARLY:
            # A stray copy of a job (SQS delivers at least once; a lost SendMessageBatch answer
            # is sent again): the lookup waits for its minute, which its own job keeps.
            return
        claimed = _claim_ambiguous(table, record)
        if claimed is None:
            return
        if _settle_from_twilio(table, deps.twilio(config), claimed, config):
            return
        if int(claimed.get("unclear", 0)) >= config.send_max_attempts:
            # Twilio never answered clearly and does not list it: it has not got it.
            _give_up(table, claimed, "max_attempts", "no clear answer from Twilio")
            return
    _attempt(table, claimed, config)


def _hold_for_slot(payload: dict[str, Any], wait: float) -> None:
    """Queue the job again for its pacing slot (SQS delays at most 900 s), counting no attempt;
    a new job rather than a redelivery, which would use up the record's receives.

    Raises:
        RetryLater: the queue refused the new job; this one comes back instead.
    """
    try:
        jobs.defer("send", payload, delay=wait)
    except jobs.JobQueueError:
        raise jobs.RetryLater(wait, "before its pacing slot") from None


def _claim(table: Table, message_id: str, now: float, token: str) -> dict[str, Any]:
    """queued → sending, counting the attempt, in one conditional write.

    Raises:
        ConditionFailedError: not queued, or not due yet (the current record attached).
    """
    return table.update(
        messages.key(message_id),
        "SET #status = :sending, updated_at = :now, attempt_started_at = :now, "
        "first_attempt_at = if_not_exists(first_attempt_at, :now), "
        "attempts = if_not_exists(attempts, :zero) + :one, #state = :sending, state_at = :now, "
        "history = list_append(if_not_exists(history, :empty), :entry), claim = :token "
        # A flag left from an earlier unclear attempt must not let a lookup job take the record
        # while this attempt is in flight.
        "REMOVE ambiguous",
        condition="#status = :queued AND (attribute_not_exists(send_at) OR send_at <= :now)",
        names={"#status": "status", "#state": "state"},
        values={
            ":sending": "sending",
            ":queued": "queued",
            ":now": now,
            ":zero": 0,
            ":one": 1,
            ":empty": [],
            ":entry": [{"status": "sending", "at": now}],
            ":token": token,
        },
    )


def _claim_ambiguous(table: Table, record: dict[str, Any]) -> dict[str, Any] | None:
    # Conditional on state_at as seen: reconcile's moves of this record are conditional on it
    # too, so exactly one of them owns the record's next step.
    token, now = messages.new_id(), clock.now()
    try:
        return table.update(
            record["pk"],
            "SET ambiguous = :false, attempt_started_at = :now, updated_at = :now, "
            "state_at = :now, attempts = if_not_exists(attempts, :zero) + :one, claim = :token",
            condition="#status = :sending AND ambiguous = :true AND state_at = :seen "
            "AND state_at <= :due_by",
            names={"#status": "status"},
            values={
                ":false": False,
                ":true": True,
                ":sending": "sending",
                ":now": now,
                ":seen": record.get("state_at"),
                ":due_by": now + SLOT_EARLY,
                ":zero": 0,
                ":one": 1,
                ":token": token,
            },
        )
    except ConditionFailedError as exc:
        mine = exc.current is not None and exc.current.get("claim") == token
        return exc.current if mine else None


def _settle_from_twilio(
    table: Table, twilio: TwilioRest, record: dict[str, Any], config: settings.Settings
) -> bool:
    """After an ambiguous attempt: True when Twilio already has the message (recorded now)."""
    try:
        found = twilio.find_message(
            to=record["to"],
            sender=record["sender"],
            body=record.get("body"),
            since=record.get("first_attempt_at", record.get("attempt_started_at", 0)),
            taken=lambda sid: messages.sid_taken(table, sid),
        )
    except TwilioError as exc:
        _retry(table, record, config, f"lookup failed: {exc.message}", ambiguous=True)
    if found is None:
        return False
    record_found(table, record["id"], found)
    return True


def record_found(table: Table, message_id: str, found: dict[str, Any]) -> None:
    """Record what Twilio's Messages list says about a message we had lost track of."""
    outcome = messages.TWILIO_STATUS.get(found["status"], "sent")
    fields: dict[str, Any] = {"sid": found["sid"]}
    if found.get("error_code"):
        fields["error_code"] = found["error_code"]
    sent = messages.try_move(
        table,
        message_id,
        "sent",
        sources=("sending", "queued"),
        set_fields=fields,
        remove_fields=("ambiguous",),
    )
    if sent is None:  # a status callback (routed by our id) moved it on already
        messages.learn_sid(table, {"pk": messages.key(message_id)}, found["sid"])
    if outcome != "sent":
        messages.try_move(table, message_id, outcome, sources=("sent",))
    if sent is not None:
        status.apply_pending(table, sent)
    logger.info(
        "found in Twilio's Messages list", extra={"id": message_id, "message_sid": found["sid"]}
    )


def _attempt(table: Table, record: dict[str, Any], config: settings.Settings) -> None:
    message_id = record["id"]
    # Checked again at every send: the owner may have blocked the prefix since it was queued.
    policy = destinations.Policy.from_parameters(parameters.load(config))
    refusal = policy.check(record["to"])
    if refusal is not None:
        refusal.log("worker")
        messages.try_move(
            table,
            message_id,
            "failed",
            sources=("sending",),
            set_fields={"failure_reason": refusal.reason, "error_message": refusal.message},
            remove_fields=("ambiguous",),
        )
        return
    if optouts.is_opted_out(table, record["to"]):
        messages.try_move(table, message_id, "opted_out", sources=("sending",))
        logger.info("recipient opted out before sending", extra={"id": message_id})
        return
    if quiet_hours.hold(table, record, clock.now(), config.retention_days):
        return
    if holds.budget_hold(table, record, clock.now(), config):  # the day's budget is spent
        return
    try:
        if holds.velocity_hold(table, record, config):  # over a limit: waits for its window
            return
    except StorageError:
        _retry(table, record, config, "velocity counter unavailable")
    try:
        result = deps.twilio(config).send_message(
            to=record["to"],
            body=record.get("body") or None,
            sender=record["sender"],
            media_urls=record.get("media_urls") or None,
            status_callback=record.get("status_callback"),
        )
    except TwilioError as exc:
        if isinstance(exc, TwilioRequestError) and exc.outcome == REFUSED:
            _fail(table, record, exc)
            return
        if exc.credentials_refused:
            logger.error(
                "Twilio refused this app's credentials; will retry",
                extra={"id": message_id, "twilio_code": exc.code},
            )
        _retry(table, record, config, _reason(exc), ambiguous=exc.outcome == AMBIGUOUS)
    sent = messages.record_sid(table, record, result["sid"])
    logger.info("message sent", extra={"id": message_id, "message_sid": result["sid"]})
    if sent is not None:
        status.apply_pending(table, sent)


def _reason(exc: TwilioError) -> str:
    """Why a send is retried, for the record and the log."""
    if exc.credentials_refused:
        return "credentials refused"
    if exc.status == 429:
        return "rate limited (429)"
    if exc.status == 503:
        return "Twilio unavailable (503)"
    return exc.message


def _fail(table: Table, record: dict[str, Any], exc: TwilioRequestError) -> None:
    fields = {"error_code": exc.code, "error_message": exc.message}
    if exc.code == UNSUBSCRIBED:
        optouts.record_opt_out(table, record["to"], source="twilio_21610")
        messages.try_move(table, record["id"], "opted_out", sources=("sending",), set_fields=fields)
    else:
        messages.try_move(table, record["id"], "failed", sources=("sending",), set_fields=fields)
    logger.info("message refused by Twilio", extra={"id": record["id"], "twilio_code": exc.code})


def _retry(
    table: Table,
    record: dict[str, Any],
    config: settings.Settings,
    reason: str,
    *,
    ambiguous: bool = False,
) -> None:
    """Schedule the next step as a new queue message at its pacing slot; always raises _Stop
    (the queue message in hand is done) or RetryLater (it could not be rescheduled)."""
    now = clock.now()
    if ambiguous:
        # Stays `sending`: the next step is a lookup, no sooner than CHECK_UNCLEAR_AFTER and its
        # backoff, whatever the attempt count (an unclear last attempt is never `failed` here).
        wait = max(messages.CHECK_UNCLEAR_AFTER, backoff(int(record.get("unclear", 0)) + 1))
        delay = pacing.delay(table, config.send_rate, now, earliest=wait)
        try:
            table.update(
                record["pk"],
                "SET ambiguous = :true, state_at = :due, error_message = :why, "
                "unclear = if_not_exists(unclear, :zero) + :one, counted = :true",
                condition="#status = :sending AND attempt_started_at = :mine",
                names={"#status": "status"},
                values={
                    ":true": True,
                    ":due": now + delay,
                    ":why": reason,
                    ":zero": 0,
                    ":one": 1,
                    ":sending": "sending",
                    ":mine": record.get("attempt_started_at"),
                },
                returning=False,
            )
        except ConditionFailedError:
            raise _Stop from None  # a callback or reconcile moved it on
        _reschedule(table, record["id"], delay)
    first = float(record.get("first_attempt_at") or now)
    delay = pacing.delay(
        table, config.send_rate, now, earliest=backoff(max(int(record.get("attempts", 0)), 1))
    )
    if now + delay > first + NOT_ACCEPTED_FOR:
        _give_up(table, record, "not_accepted", reason)
        return
    moved = messages.try_move(
        table,
        record["id"],
        "queued",
        sources=("sending",),
        due=now + delay,
        history=False,
        remove_fields=("ambiguous",),
        # Counted once by the velocity limits (holds.velocity_hold), not at every retry.
        set_fields={"counted": True} if record.get("counted") else None,
    )
    if moved is None:
        raise _Stop
    _reschedule(table, record["id"], delay)


def _reschedule(table: Table, message_id: str, delay: float) -> None:
    """Queue the message's next step after delay; the message in hand is then done.

    Raises:
        _Stop: always (a failure to queue is logged: the dispatcher's stale sweep, or reconcile
            for `sending`, picks the record up from its state).
    """
    try:
        now = clock.now()
        jobs.defer("send", messages.send_job(message_id, now + delay, now), delay=round(delay))
    except jobs.JobQueueError:
        logger.error("could not queue the next attempt; the sweeps will", extra={"id": message_id})
    raise _Stop


def _give_up(table: Table, record: dict[str, Any], why: str, reason: str) -> None:
    """End a message `failed` by our own decision (failure_reason says which): Twilio's later
    callbacks may still move it, should it have the message after all.

    Raises:
        _Stop: always.
    """
    messages.try_move(
        table,
        record["id"],
        "failed",
        sources=("sending", "queued"),
        set_fields={"error_message": f"{why}: {reason}", "failure_reason": why},
        remove_fields=("ambiguous",),
    )
    logger.error("message failed after retries", extra={"id": record["id"], "reason": why})
    raise _Stop


class _Stop(Exception):
    """Internal: the message reached a terminal state inside _retry."""
