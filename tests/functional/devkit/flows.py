"""Call scripts for `phone call --script`, shared by the in-process and the local-stack tests."""

from __future__ import annotations

from urllib.parse import urlencode


def twimlet(base: str, name: str, *pairs: tuple[str, str]) -> str:
    """A twimlet's URL under the app's base URL."""
    return f"{base}/twimlets/{name}?" + urlencode(pairs)


def findme_menu(base: str) -> str:
    """A menu whose option 1 finds two numbers in turn, then voicemail if neither answers."""
    voicemail = twimlet(base, "voicemail", ("Email", "ops@example.org"), ("Transcribe", "false"))
    findme = twimlet(
        base,
        "findme",
        ("PhoneNumbers[]", "+14155550100"),
        ("PhoneNumbers[]", "+14155550101"),
        ("FailUrl", voicemail),
    )
    return twimlet(base, "menu", ("Message", "Press 1 to find me"), ("Options[1]", findme))


def unanswered(menu: str) -> str:
    """Neither number answers: the caller ends in voicemail (YAML)."""
    return (
        f"url: '{menu}'\n"
        "digits: ['1']\n"
        "dial: {'+14155550100': no-answer, '+14155550101': no-answer}\n"
        "expect_dial: ['+14155550100', '+14155550101']\n"
        "expect_say: ['Press 1 to find me', 'Please leave a message after the beep.']\n"
    )


def answered(menu: str) -> str:
    """The second number answers and presses a key at the whisper (YAML)."""
    return (
        f"url: '{menu}'\n"
        "digits: ['1']\n"
        "dial: {'+14155550100': no-answer}\n"
        "callee_keys: '1'\n"
        "expect_dial: ['+14155550101']\n"
    )
