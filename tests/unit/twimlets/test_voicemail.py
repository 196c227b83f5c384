"""voicemail: greeting, recording, transcription callback, queued notifications, the email."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.aws import parameters
from chalicelib.core import settings
from chalicelib.guards import callers
from chalicelib.twimlets import voicemail
from chalicelib.twimlets.common import Job

from .support import assert_twiml, request

SELF = "https://voice.example.com/twimlets/voicemail"
THANKS = "<Response><Say>Thanks. Good bye.</Say><Hangup/></Response>"
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE5f0c"
RECORDING_SID = "RE" + "5f0c" * 8


# The addresses these tests e-mail; the recipient rule itself is tested below and in guards.
ALLOWED = callers.allowed_recipients("@example.org @b.c", None)


def run(query, form=None, recipients=ALLOWED):
    return voicemail.voicemail(request(query, form), recipients=recipients)


def test_example_encodes_the_email_in_the_callback():
    twiml, jobs = run("Email=ops%2Bvm%40example.org")
    assert_twiml(
        twiml,
        "<Response><Say>Please leave a message after the beep.</Say><Record "
        f'transcribe="true" transcribeCallback="{SELF}?Email=ops%2Bvm%40example.org"/></Response>',
    )
    assert jobs == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "Email=a%40b.c&Transcribe=false",
            "<Say>Please leave a message after the beep.</Say><Record/>",
        ),
        ("Transcribe=no&Message=Hi", "<Say>Hi</Say><Record/>"),
        ("Transcribe=0&Message=%20", "<Say>Please leave a message after the beep.</Say><Record/>"),
        (
            "Transcribe=TRUE&Message=https://x.org/g.mp3",
            f'<Play>https://x.org/g.mp3</Play><Record transcribe="true" '
            f'transcribeCallback="{SELF}?Email="/>',
        ),
        (
            "Transcribe=&Email=a%40b.c&NotifySms=%2B16175550100",
            '<Say>Please leave a message after the beep.</Say><Record transcribe="true" '
            f'transcribeCallback="{SELF}?Email=a%40b.c&amp;NotifySms=%2B16175550100"/>',
        ),
    ],
)
def test_first_request(query, expected):
    twiml, jobs = run(query)
    assert_twiml(twiml, f"<Response>{expected}</Response>")
    assert jobs == []


def test_recording_without_transcription_notifies_at_once():
    twiml, jobs = run(
        "Email=ops%40example.org&Transcribe=false",
        {"RecordingUrl": RECORDING, "RecordingSid": RECORDING_SID, "From": "+16175550134"},
    )
    assert_twiml(twiml, THANKS)
    assert jobs == [
        Job(
            "voicemail_notification",
            {
                "email": "ops@example.org",
                "caller": "+16175550134",
                "recording_url": RECORDING,
                "transcription": None,
            },
            "RE5f0c",
            jobs[0].once,
        )
    ]
    # Once per recording: the same webhook delivered again names the same event.
    assert jobs[0].once.startswith(f"voicemail-recording:{RECORDING_SID}:email:")
    again = {"RecordingUrl": RECORDING, "RecordingSid": RECORDING_SID}
    assert run("Email=ops%40example.org&Transcribe=false", again)[1][0].once == jobs[0].once


def test_a_recording_without_a_well_formed_sid_notifies_nobody():
    # A re-cut request can merge the next field into the SID, or take the SID away.
    for sid in (None, "RE5f0c", RECORDING_SID + "RecordingUrl"):
        form = {"RecordingUrl": RECORDING, **({"RecordingSid": sid} if sid else {})}
        twiml, jobs = run("Email=ops%40example.org&Transcribe=false", form)
        assert_twiml(twiml, THANKS)
        assert jobs == []
        callback = {**form, "TranscriptionStatus": "completed", "TranscriptionText": "Hi"}
        assert run("Email=ops%40example.org", callback) == ("", [])


def test_recording_with_transcription_waits_for_the_callback():
    twiml, jobs = run("Email=ops%40example.org", {"RecordingUrl": RECORDING})
    assert_twiml(twiml, THANKS)
    assert jobs == []


@pytest.mark.parametrize(
    ("status", "transcription"),
    [("completed", "Call me back"), ("COMPLETED", "Call me back"), ("failed", None)],
)
def test_transcription_callback_answers_empty_and_notifies(status, transcription):
    body, jobs = run(
        "Email=ops%40example.org&NotifySms=%2B16175550100",
        {
            "TranscriptionStatus": status,
            "TranscriptionText": "Call me back",
            "RecordingUrl": RECORDING,
            "RecordingSid": RECORDING_SID,
            "From": "",
            "Caller": "+16175550134",
        },
    )
    assert body == ""
    assert [job.kind for job in jobs] == ["voicemail_notification", "sms_notification"]
    assert jobs[0].payload["transcription"] == transcription
    assert jobs[0].payload["caller"] == "+16175550134"
    assert jobs[1].payload["to"] == "+16175550100"


def test_other_transcription_statuses_fall_through():
    twiml, jobs = run("Email=a%40b.c", {"TranscriptionStatus": "in-progress"})
    assert "<Record" in twiml
    assert jobs == []


@pytest.mark.parametrize(
    ("query", "kinds"),
    [
        ("Email=ops%40example.org", ["voicemail_notification"]),
        ("NotifySms=%2B16175550100", ["sms_notification"]),
        ("NotifySms=+16175550100", ["sms_notification"]),  # a raw "+" decodes to a space
        ("Email=not-an-address", []),
        ("Email=a%40b.c%0ABcc%3A+x%40y.z", []),
        ("NotifySms=6175550100", []),
        ("", []),
    ],
)
def test_who_is_notified(query, kinds):
    form = {"RecordingUrl": RECORDING, "RecordingSid": RECORDING_SID}
    _, jobs = run(query + "&Transcribe=false", form)
    assert [job.kind for job in jobs] == kinds


@pytest.mark.parametrize(
    ("email", "recipients", "sent"),
    [
        ("ops@example.org", "ops@example.org", True),
        ("OPS@Example.org", "ops@example.org", True),
        ("ops@example.org", "@example.org", True),
        ("anyone@example.org", "example.org", True),
        ("ops@example.org", "other@example.org", False),
        ("ops@mail.example.org", "@example.org", False),  # not subdomains
        ("ops@example.org.evil.test", "@example.org", False),
        ("victim@elsewhere.test", "@example.org", False),
    ],
)
def test_email_only_to_allowed_recipients(email, recipients, sent, caplog):
    # Deliberate departure: the original e-mailed any address its URL held.
    form = {"RecordingUrl": RECORDING, "RecordingSid": RECORDING_SID}
    allowed = callers.allowed_recipients(recipients, "voicemail@example.com")
    _, jobs = run(f"Email={email}&Transcribe=false", form, allowed)
    assert [job.kind for job in jobs] == (["voicemail_notification"] if sent else [])
    refused = [r for r in caplog.records if r.getMessage().startswith("voicemail e-mail refused")]
    assert len(refused) == (0 if sent else 1)
    assert all(email.split("@")[0] not in str(vars(r)) for r in refused)


@pytest.mark.parametrize(
    ("number", "formatted"),
    [
        ("+16175550134", "(617) 555-0134"),
        ("9165550123", "(916) 555-0123"),
        ("1-916-555-0123", "(916) 555-0123"),
        ("5550123", "555-0123"),
        ("+447700900123", "+447700900123"),
        ("anonymous", "anonymous"),
        ("", ""),
    ],
)
def test_phone_format(number, formatted):
    assert voicemail.phone_format(number) == formatted


def test_email_texts_are_the_originals():
    assert voicemail.email_message("+16175550134", RECORDING, "Call me back") == (
        "New Voicemail Message from (617) 555-0134",
        "You have a new voicemail from (617) 555-0134\n\n"
        "Text of the transcribed voicemail:\nCall me back.\n\n"
        f"Click this link to listen to the message:\n{RECORDING}.mp3",
    )
    assert voicemail.email_message("+16175550134", RECORDING, None) == (
        "New Voicemail Message from (617) 555-0134",
        "You have a new voicemail from (617) 555-0134\n\n"
        f"Click this link to listen to the message:\n{RECORDING}.mp3",
    )
    subject, _ = voicemail.email_message("a\r\nBcc: x", "", None)
    assert "\n" not in subject


def test_sms_texts_fit_one_message():
    assert voicemail.sms_text("+16175550134", RECORDING, None) == (
        f"New voicemail from (617) 555-0134.\n{RECORDING}.mp3"
    )
    assert voicemail.sms_text("+16175550134", RECORDING, "Call me") == (
        f"New voicemail from (617) 555-0134: Call me\n{RECORDING}.mp3"
    )
    long = voicemail.sms_text("+16175550134", RECORDING, "x" * 5000)
    assert len(long) == voicemail.SMS_LIMIT
    assert long.endswith(f"…\n{RECORDING}.mp3")


class FakeSes:
    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.error = error

    def send_email(self, **request: Any) -> dict[str, Any]:
        if self.error:
            raise self.error
        self.sent.append(request)
        return {"MessageId": "m1"}


@pytest.fixture
def ses(monkeypatch):
    fake = FakeSes()
    monkeypatch.setattr(voicemail, "get_ses_client", lambda: fake)
    monkeypatch.setattr(settings, "load", lambda: None)
    values = parameters.Parameters(
        {"voicemail/from_email": "voicemail@example.com", "twimlets/voicemail_recipients": "b.c"}
    )
    monkeypatch.setattr(parameters, "load", lambda config: values)
    return fake


def test_deliver_sends_the_email_through_ses(ses):
    voicemail.deliver_voicemail_notification(
        {
            "email": "ops@b.c",
            "caller": "+16175550134",
            "recording_url": RECORDING,
            "transcription": "Call me back",
        }
    )
    assert ses.sent == [
        {
            "Source": "voicemail@example.com",
            "Destination": {"ToAddresses": ["ops@b.c"]},
            "Message": {
                "Subject": {
                    "Data": "New Voicemail Message from (617) 555-0134",
                    "Charset": "UTF-8",
                },
                "Body": {
                    "Text": {
                        "Data": voicemail.email_message("+16175550134", RECORDING, "Call me back")[
                            1
                        ],
                        "Charset": "UTF-8",
                    }
                },
            },
        }
    ]


def test_deliver_drops_an_email_to_a_recipient_no_longer_allowed(ses):
    # Queued while allowed, the parameter changed since: not sent, and not retried.
    voicemail.deliver_voicemail_notification({"email": "ops@example.org"})
    assert ses.sent == []


def test_deliver_raises_so_the_queue_retries(ses, monkeypatch):
    from botocore.exceptions import ClientError

    ses.error = ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "SendEmail")
    with pytest.raises(voicemail.NotificationError, match="Throttling"):
        voicemail.deliver_voicemail_notification({"email": "a@b.c"})
    values = parameters.Parameters({})
    monkeypatch.setattr(parameters, "load", lambda config: values)
    with pytest.raises(parameters.MissingParameterError):
        voicemail.deliver_voicemail_notification({"email": "a@b.c"})
