"""make run's terminal lines: one per request, errors, nothing for the rest."""

import io
import json

from devkit import console


def line(**fields):
    return json.dumps(fields) + "\n"


def test_a_request_is_one_short_line_and_idle_noise_is_none():
    handled = line(message="request handled", method="POST", route="/sms", status=200,
                   latency_ms=12.4, level="INFO")  # fmt: skip
    assert console.summary(handled) == "POST /sms 200 12 ms"
    assert console.summary(line(message="dispatch run", level="DEBUG")) is None
    assert console.summary(line(message="message sent", level="INFO")) is None
    assert console.summary(line(message="storage unavailable", level="ERROR")) == (
        "error: storage unavailable"
    )
    failed = line(
        message="job failed",
        level="ERROR",
        kind="voicemail_notification",
        error="SES did not send the email: MessageRejected",
        exception="NotificationError",
    )
    assert console.summary(failed) == (
        "error: job failed (kind=voicemail_notification, "
        "error=SES did not send the email: MessageRejected, exception=NotificationError)"
    )
    chalice_access = '127.0.0.1 - - [29/Nov/2026 17:40:53] "POST /voice HTTP/1.1" 200 -'
    assert console.summary(chalice_access) is None
    assert console.summary("Traceback (most recent call last):\n") == (
        "Traceback (most recent call last):"
    )


def test_every_line_goes_to_the_log_and_the_summary_to_the_terminal():
    source = io.StringIO(line(message="request handled", method="GET", route="/voice",
                              status=403, level="WARNING") + "plain\n")  # fmt: skip
    log, out = io.StringIO(), io.StringIO()
    console.pump(source, log, out).join(timeout=5)
    assert log.getvalue().count("\n") == 2
    assert out.getvalue().splitlines() == ["GET /voice 403", "plain"]


def test_an_accepted_message_is_one_readable_line():
    out = io.StringIO()
    console.accepted("Messages", {"from": "+15005550006", "to": "+15105551212", "body": "Hi"}, out)
    assert out.getvalue() == "twilio: SMS +15005550006 -> +15105551212: Hi\n"
