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


# Deliberate departure: the prompt calls back a URL that counts the prompts (the original's
# bare Gather and Redirect prompted for ever).
PROMPT = (
    '<Response><Gather action="{url}" numDigits="{n}"><Say>Please enter your conference pass '
    "code</Say></Gather><Redirect>{url}</Redirect></Response>"
)
SELF = "https://voice.example.com/twimlets/conference"
GOODBYE = "<Response><Say>Sorry, that pass code is not correct. Good bye.</Say><Hangup/></Response>"


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
        url = f"{SELF}?Password={password}&amp;Moderators%5B%5D=2125550147&amp;PassCodeAttempts=1"
        assert_twiml(twiml, PROMPT.format(n=num_digits, url=url))
    else:
        assert "<Conference" in twiml
    assert jobs == []


def test_the_prompt_calls_back_with_the_conference_parameters_only():
    # On a GET, Twilio's fields are in the query: they do not ride along into the next URL.
    query = (
        "Name=r&Moderators[0]=2125550147&Digits=9&CallSid=CA1&From=%2B13105550110"
        "&PassCodeAttempts=1&Password=1234&Message=Hi&Music=rock&EnableSmsNotifications=1&x=y"
    )
    twiml, _ = run(query)
    url = (
        f"{SELF}?Name=r&amp;Moderators%5B0%5D=2125550147&amp;Password=1234&amp;Message=Hi"
        "&amp;Music=rock&amp;EnableSmsNotifications=1&amp;PassCodeAttempts=2"
    )
    assert_twiml(twiml, PROMPT.format(n=4, url=url))


@pytest.mark.parametrize(
    ("attempts", "digits", "expected"),
    [
        ("1", "9999", "prompt 2"),
        ("2", "", "prompt 3"),  # silence counts
        ("3", "9999", "goodbye"),
        ("3", "", "goodbye"),
        ("3", "1234", "room"),  # the last try may still be right
        ("99999", "9999", "goodbye"),
        ("abc", "9999", "prompt 1"),  # not ours: read as none
        ("-5", "9999", "prompt 1"),
    ],
)
def test_pass_code_attempts_then_a_polite_hang_up(attempts, digits, expected, caplog):
    query = f"Name=r&PassCodeAttempts={attempts}&Password=1234"
    twiml, _ = run(query, {"Digits": digits, "From": "+13105550110"})
    if expected == "goodbye":
        assert_twiml(twiml, GOODBYE)
        (line,) = [r for r in caplog.records if "wrong pass code" in r.getMessage()]
        assert line.caller == "+*******0110"
    elif expected == "room":
        assert "<Conference>r</Conference>" in twiml
    else:
        url = f"{SELF}?Name=r&amp;Password=1234&amp;PassCodeAttempts={expected[-1]}"
        assert_twiml(twiml, PROMPT.format(n=4, url=url))


@pytest.mark.parametrize(
    ("moderators", "caller", "start"),
    [
        ("Moderators[]=212-555-0147", {"From": "+12125550147"}, "true"),
        ("Moderators[]=%2B1%20212%20555%200147", {"From": "2125550147"}, "true"),
        ("Moderators[]=2125550147", {"From": "", "Caller": "12125550147"}, "true"),
        # The called number counts too (conference was not changed).
        ("Moderators[]=2125550147", {"From": "+13105550110", "To": "+12125550147"}, "true"),
        ("Moderators[]=2125550147", {"From": "+13105550110", "To": "+15005550006"}, "false"),
        # Deliberate departures from the original's loose digit compare: E.164, exactly.
        ("Moderators[]=0447700900123", {"From": "+447700900123", "To": "1"}, "false"),
        ("Moderators[]=%2B44%207700%20900123", {"From": "+447700900123"}, "true"),
        ("Moderators[]=%2B51%2005551212", {"From": "+15105551212"}, "false"),
        ("Moderators[]=510-555-1212", {"From": "+5105551212"}, "false"),
        # A blank entry is nobody: an anonymous caller is no moderator.
        ("Moderators[]=", {"From": "anonymous", "Caller": "anonymous"}, "false"),
        ("Moderators[]=&Moderators[]=abc", {"From": ""}, "false"),
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


def test_moderators_and_their_alerts_are_capped():
    listed = "&".join(f"Moderators[]=%2B1212555{n:04d}" for n in range(15))
    caller = {"CallSid": CALL_SID, "From": "+13105550110", "Caller": "+13105550110"}
    twiml, jobs = run(listed + "&EnableSmsNotifications=1&Name=r", caller)
    assert [job.payload["to"] for job in jobs] == [f"+1212555{n:04d}" for n in range(10)]
    assert 'startConferenceOnEnter="false"' in twiml
    # The eleventh is no moderator.
    eleventh = run(listed + "&Name=r", {"From": "+12125550010"})[0]
    assert 'startConferenceOnEnter="false"' in eleventh
    tenth = run(listed + "&Name=r", {"From": "+12125550009"})[0]
    assert 'startConferenceOnEnter="true"' in tenth
