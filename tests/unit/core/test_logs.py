"""JSON log lines: one object per line, context fields, phone numbers masked."""

import json
import logging

import pytest

from chalicelib.core import logs


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+15105551212", "+*******1212"),
        ("call from +15105551212 to +442071838750", "call from +*******1212 to +********8750"),
        ("url?To=%2B15105551212&x=1", "url?To=%2B*******1212&x=1"),
        ("5105551212", "******1212"),
        ("+1 (510) 555-1212", "+************1212"),
        ("call 415-555-0100 now", "call ********0100 now"),
        ("(415) 555-0100", "**********0100"),
        ("415.555.0100 or 415 555 0100", "********0100 or ********0100"),
        ("1-415-555-0100", "**********0100"),
        ("To=%252B14155550100&x=1", "To=%252B*******0100&x=1"),
        ("To=%25252B14155550100", "To=%25252B*******0100"),
        ("From=%2B1%20415%20555%200100", "From=%2B****************0100"),
        ("From=%2B1+415+555+0100", "From=%2B**********0100"),
        ("2026-12-03 17:14:05, 3 of 1024 done", "2026-12-03 17:14:05, 3 of 1024 done"),
        ("CA1234567890abcdef1234567890abcdef", "CA1234567890abcdef1234567890abcdef"),
        ("latency 12.5 ms, 3 parts, code 21211", "latency 12.5 ms, 3 parts, code 21211"),
    ],
)
def test_mask_numbers(text, masked):
    assert logs.mask_numbers(text) == masked


def test_json_line_with_context_and_extra(capsys):
    logs.configure()
    logs.start_invocation(route="/voice", request_id="12345678-1234-1234-1234-123456789012")
    logs.bind(call_sid="CA" + "1" * 32, empty=None)
    logging.getLogger("chalicelib.test").info(
        "dialing %s", "+15105551212", extra={"to": "+15105550000", "outcome": "ok"}
    )
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["message"] == "dialing +*******1212"
    assert record["to"] == "+*******0000"
    assert record["level"] == "INFO"
    assert record["route"] == "/voice"
    assert record["request_id"] == "12345678-1234-1234-1234-123456789012"
    assert record["call_sid"] == "CA" + "1" * 32
    assert "empty" not in record
    assert record["timestamp"].endswith("Z")


def test_exceptions_log_their_type_only(capsys):
    logs.configure()
    try:
        raise ValueError("secret detail +15105551212")
    except ValueError:
        logging.getLogger("chalicelib.test").exception("failed")
    record = json.loads(capsys.readouterr().out)
    assert record["exception"] == "ValueError"
    assert "secret detail" not in json.dumps(record)


def test_control_characters_cannot_forge_a_line(capsys):
    logs.configure()
    forged = 'x\n{"level": "ERROR", "message": "forged"}\r\x1b[2J\u2028'
    logging.getLogger("chalicelib.test").warning("caller said %s", forged, extra={"body": forged})
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["body"] == forged and record["message"] == f"caller said {forged}"
    assert "\x1b" not in line and "\r" not in line


@pytest.mark.parametrize(
    ("value", "level"),
    [("DEBUG", logging.DEBUG), ("warning", logging.WARNING), ("", logging.INFO), ("loud", 20)],
)
def test_the_stage_sets_the_level(monkeypatch, value, level):
    monkeypatch.setenv(logs.LEVEL_VARIABLE, value)
    try:
        logs.configure()
        assert logging.getLogger("chalicelib").level == level
    finally:
        logs.configure(logging.INFO)
