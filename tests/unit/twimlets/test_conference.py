"""conference: pass code, moderators, SMS alerts as queued jobs, greeting, room name, music."""

from __future__ import annotations

import hashlib

import pytest

from chalicelib.guards.destinations import Policy
from chalicelib.twimlets import conference
from chalicelib.twimlets.common import Job

from .support import EXECUTE_API, assert_twiml, request

GREETING = "<Say>You are now entering the conference line.</Say>"
EMPTY_ROOM = "d41d8cd98f00b204e9800998ecf8427e"
CALL_SID = "CA" + "1" * 32
SMS = "+13105550110 has entered your conference.  Call the number this text came from to join."


def run(query, form=None, **options):
    return conference.conference(request(query, form, **options))


def test_example_sends_the_sms_through_the_queue_not_as_message():
    twiml, jobs = run(
        "Moderators%5B%5D=212-555-0147&EnableSmsNotifications=1&Music=classical",
        {
            "CallSid": CALL_SID,
            "From": "+13105550110",
            "Caller": "+13105550110",
            "To": "+15005550006",
        },
    )
    assert_twiml(
        twiml,
        f"<Response>{GREETING}<Dial><Conference waitUrl="
        '"https://voice.example.com/twimlets/holdmusic?Bucket=com.twilio.music.classical" '
        'waitMethod="GET" startConferenceOnEnter="false">98cdfbeadfd26fdb5525852e06488244'
        "</Conference></Dial></Response>",
    )
    event = f"conference-join:{CALL_SID}:{hashlib.sha256(b'+12125550147').hexdigest()[:16]}"
    payload = {"to": "+12125550147", "body": SMS, "event": event}
    assert jobs == [Job("sms_notification", payload, "conference", event)]
    assert hashlib.md5(b"2125550147").hexdigest() == "98cdfbeadfd26fdb5525852e06488244"


def test_no_parameters():
    twiml, jobs = run("")
    assert_twiml(
        twiml, f"<Response>{GREETING}<Dial><Conference>{EMPTY_ROOM}</Conference></Dial></Response>"
    )
    assert jobs == []


PROMPT = (
    '<Response><Gather numDigits="{n}"><Say>Please enter your conference pass code</Say>'
    "</Gather><Redirect/></Response>"
)


@pytest.mark.parametrize(
    ("password", "digits", "prompted", "num_digits"),
    [
        ("1234", None, True, 4),
        ("1234", "9999", True, 4),  # a wrong code: the same prompt, no message
        ("1234", "01234", True, 4),  # exact string compare (the original let this in)
        ("1234", "1234", False, 0),
        ("12", "1", True, 3),  # at least 3 digits
        ("123456", "", True, 6),
        ("", "", False, 0),
    ],
)
def test_pass_code(password, digits, prompted, num_digits):
    form = {"Digits": digits} if digits is not None else {}
    twiml, jobs = run(f"Password={password}&Moderators[]=2125550147", form)
    if prompted:
        assert_twiml(twiml, PROMPT.format(n=num_digits))
    else:
        assert "<Conference" in twiml
    assert jobs == []


@pytest.mark.parametrize(
    ("moderators", "caller", "start"),
    [
        ("Moderators[]=212-555-0147", {"From": "+12125550147"}, "true"),
        ("Moderators[]=%2B1%20212%20555%200147", {"From": "2125550147"}, "true"),
        ("Moderators[]=2125550147", {"From": "", "Caller": "12125550147"}, "true"),
        # The called number counts too (conference was not changed).
        ("Moderators[]=2125550147", {"From": "+13105550110", "To": "+12125550147"}, "true"),
        ("Moderators[]=2125550147", {"From": "+13105550110", "To": "+15005550006"}, "false"),
        # Loose compare, as the original: leading zeros do not matter.
        ("Moderators[]=0447700900123", {"From": "+447700900123", "To": "1"}, "true"),
        # A scalar is not an array: moderation is off entirely.
        ("Moderators=2125550147", {"From": "+12125550147"}, None),
    ],
)
def test_moderators(moderators, caller, start):
    twiml, _ = run(moderators, caller)
    attribute = f'startConferenceOnEnter="{start}"'
    if start is None:
        assert "startConferenceOnEnter" not in twiml
    else:
        assert attribute in twiml


def test_sms_alerts_only_for_non_moderators_with_notifications_on():
    query = "Moderators[]=2125550147&Moderators[]=%2B447700900123&Moderators[]=555-0100"
    caller = {"CallSid": CALL_SID, "From": "+13105550110", "Caller": "+13105550110"}
    _, jobs = run(query + "&EnableSmsNotifications=true", caller)
    # The 7-digit moderator has no E.164 form and gets no SMS; +44 is outside the default
    # destination policy, and gets one when the policy allows it.
    assert [job.payload["to"] for job in jobs] == ["+12125550147"]
    wider = Policy(("+1", "+44"), ())
    _, jobs = conference.conference(request(query + "&EnableSmsNotifications=true", caller), wider)
    assert [job.payload["to"] for job in jobs] == ["+12125550147", "+447700900123"]
    assert run(query + "&EnableSmsNotifications=0", caller)[1] == []
    assert run(query, caller)[1] == []
    assert run(query + "&EnableSmsNotifications=1", {"From": "+12125550147"})[1] == []
    assert run("Moderators=2125550147&EnableSmsNotifications=1", caller)[1] == []
    # Each join texts once, by its CallSid: a join without a well-formed one texts nobody.
    for sid in (None, "CA1", CALL_SID + "CallStatus"):
        form = {k: v for k, v in caller.items() if k != "CallSid"}
        assert (
            run(query + "&EnableSmsNotifications=1", {**form, "CallSid": sid} if sid else form)[1]
            == []
        )


def test_sms_text_uses_caller_even_when_missing():
    form = {"CallSid": CALL_SID, "From": "+13105550110"}
    _, jobs = run("Moderators[]=2125550147&EnableSmsNotifications=1", form)
    assert jobs[0].payload["body"] == " " + SMS.split(" ", 1)[1]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Welcome", "<Say>Welcome</Say>"),
        ("%20%20", "<Say>  </Say>"),
        ("%20https://x.org/w.mp3", "<Play> https://x.org/w.mp3</Play>"),
        ("0", "<Say>0</Say>"),
    ],
)
def test_greeting(message, expected):
    twiml, _ = run(f"Message={message}&Name=room")
    assert_twiml(
        twiml, f"<Response>{expected}<Dial><Conference>room</Conference></Dial></Response>"
    )


def test_room_name_hashes_message_and_normalised_moderators():
    twiml, _ = run("Message=Hi&Moderators[]=1-212-555-0147&Moderators[]=", {"From": "+1"})
    name = hashlib.md5(b"Hi2125550147").hexdigest()
    assert f">{name}</Conference>" in twiml


@pytest.mark.parametrize(
    ("music", "wait_url"),
    [
        ("ambient", f"{EXECUTE_API}/twimlets/holdmusic?Bucket=com.twilio.music.ambient"),
        ("soft-rock", f"{EXECUTE_API}/twimlets/holdmusic?Bucket=com.twilio.music.soft-rock"),
        ("HTTPS://x.org/wait.xml", "HTTPS://x.org/wait.xml"),
        ("newage", None),
        ("Classical", None),
        ("jazz", None),
        ("%20http://x.org", None),
    ],
)
def test_music(music, wait_url):
    twiml, _ = run(f"Music={music}&Name=r", base=EXECUTE_API)
    if wait_url is None:
        assert_twiml(
            twiml, f"<Response>{GREETING}<Dial><Conference>r</Conference></Dial></Response>"
        )
    else:
        assert_twiml(
            twiml,
            f'<Response>{GREETING}<Dial><Conference waitUrl="{wait_url.replace("&", "&amp;")}" '
            'waitMethod="GET">r</Conference></Dial></Response>',
        )


@pytest.mark.parametrize(
    ("digits", "number"),
    [
        ("2125550147", "+12125550147"),
        ("447700900123", "+447700900123"),
        ("5550100", None),
        ("07700900123", None),
        ("", None),
        ("1" * 16, None),
    ],
)
def test_e164(digits, number):
    assert conference.e164(digits) == number
