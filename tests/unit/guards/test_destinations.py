"""The destination policy: prefixes, defaults, allowing back, reading written numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chalicelib.api.validation import ValidationError
from chalicelib.aws.parameters import Parameters
from chalicelib.core import logs
from chalicelib.guards import destinations
from chalicelib.guards.destinations import (
    BLOCKED,
    NOT_ALLOWED,
    NOT_E164,
    Policy,
    check_written,
    read_number,
)


def policy(allowed: str | None = None, blocked: str | None = None) -> Policy:
    values = {}
    if allowed is not None:
        values["outbound/allowed_prefixes"] = allowed
    if blocked is not None:
        values["outbound/blocked_prefixes"] = blocked
    return Policy.from_parameters(Parameters(values))


def reason(p: Policy, number: str) -> str | None:
    refusal = p.check(number)
    return refusal.reason if refusal else None


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+15105551212", None),  # US
        ("+14165550123", None),  # Canada
        ("+17875550123", None),  # Puerto Rico: US domestic
        ("+13405550123", None),  # US Virgin Islands
        ("+16715550123", None),  # Guam
        ("+16705550123", None),  # Northern Mariana Islands
        ("+16845550123", None),  # American Samoa
        ("+19005550123", BLOCKED),  # premium rate
        ("+19765550123", BLOCKED),
        ("+12129765555", BLOCKED),  # the 976 exchange in any area code
        ("+12129775555", None),
        ("+18765550123", BLOCKED),  # Jamaica
        ("+16585550123", BLOCKED),  # Jamaica's overlay
        ("+18095550123", BLOCKED),  # Dominican Republic
        ("+18295550123", BLOCKED),
        ("+18495550123", BLOCKED),
        ("+12845550123", BLOCKED),  # British Virgin Islands
        ("+12425550123", BLOCKED),  # Bahamas
        ("+14415550123", BLOCKED),  # Bermuda
        ("+442071838750", NOT_ALLOWED),
        ("+8825550123", NOT_ALLOWED),
        ("15105551212", NOT_E164),
        ("+1 510 555 1212", NOT_E164),
        ("", NOT_E164),
        ("+0123", NOT_E164),
    ],
)
def test_defaults(number, expected):
    assert reason(Policy.default(), number) == expected
    assert reason(policy(), number) == expected


def test_the_default_list_has_every_nanp_country_outside_the_us_and_canada():
    assert len(destinations.NANP_ABROAD) == 21
    assert len(set(destinations.NANP_ABROAD.values())) == 18
    territories = ("+1787", "+1939", "+1340", "+1671", "+1670", "+1684")
    assert not set(territories) & set(destinations.DEFAULT_BLOCKED)


def test_refusals_name_their_rule():
    refusal = Policy.default().check("+18765550123")
    assert refusal.rule == "outbound/blocked_prefixes +1876"
    assert "outbound/allowed_prefixes" in refusal.message
    refusal = Policy.default().check("+12129765555")
    assert refusal.rule == "outbound/blocked_prefixes +1XXX976"
    refusal = policy("+1, +44").check("+33123456789")
    assert refusal.rule == "outbound/allowed_prefixes +1,+44"
    assert "outbound/allowed_prefixes" in refusal.message


def test_a_more_specific_or_equal_allowed_prefix_allows_a_blocked_one_back():
    jamaica = "+18765550123"
    assert reason(policy("+1,+1876"), jamaica) is None
    assert reason(policy("+1,+187655"), jamaica) is None
    assert reason(policy("+1,+187655"), "+18764440123") == BLOCKED
    # 212-976 allowed back, equal in length to +1XXX976; other 976 exchanges stay blocked.
    assert reason(policy("+1,+1212976"), "+12129765555") is None
    assert reason(policy("+1,+1212976"), "+13129765555") == BLOCKED
    # A less specific allowed prefix does not override a blocked one.
    assert reason(policy("+1,+18"), jamaica) == BLOCKED


def test_star_allows_everything_not_blocked():
    star = policy("*")
    assert reason(star, "+442071838750") is None
    assert reason(star, "+18765550123") == BLOCKED
    assert reason(policy("*", "none"), "+18765550123") is None


def test_blocked_prefixes_replace_extend_or_empty_the_default():
    assert reason(policy("+1", "+1212"), "+18765550123") is None
    assert reason(policy("+1", "+1212"), "+12125550123") == BLOCKED
    assert reason(policy("+1", "default, +1212"), "+12125550123") == BLOCKED
    assert reason(policy("+1", "default, +1212"), "+18765550123") == BLOCKED
    assert reason(policy("+1", "None"), "+19005550123") is None
    # Digits without "+" are read as the same prefix; x is any digit.
    assert reason(policy("1", "1787"), "+17875550123") == BLOCKED
    assert reason(policy("+1", "+1x11"), "+12115550123") == BLOCKED


def test_bad_entries_are_ignored_and_logged(capsys):
    logs.configure()
    p = policy("+1, +44-20, abc", "+1876, +1 900")
    assert p.allowed == ("+1",)
    assert p.blocked == ("+1876",)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ignored = [line["parameter"] for line in lines if "ignored" in line["message"]]
    assert ignored == ["outbound/allowed_prefixes"] * 2 + ["outbound/blocked_prefixes"]


def test_an_allowed_list_of_only_bad_entries_allows_nothing():
    assert reason(policy("junk"), "+15105551212") == NOT_ALLOWED


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("+15105551212", "+15105551212"),
        ("+1 (510) 555-1212", "+15105551212"),
        ("510.555.1212", "+15105551212"),
        ("5105551212", "+15105551212"),
        ("15105551212", "+15105551212"),
        (" 15105551212", "+15105551212"),  # "+" in a URL query arrives as a space
        ("+44 20 7183 8750", "+442071838750"),
        ("442071838750", None),  # international without "+": not sure
        (" 442071838750", None),
        ("011442071838750", None),
        ("00442071838750", None),
        ("5551212", None),
        ("1234567890", None),  # NANP area codes start with 2-9
        ("510-555-1212 x12", None),
        ("+1510555121w2", None),
        ("sip:alice@example.com", None),
        ("", None),
        ("".join(chr(0xFF10 + int(d)) for d in "5105551212"), None),  # full-width digits
    ],
)
def test_reading_written_numbers(written, number):
    assert read_number(written) == number


def test_check_written_reads_then_checks():
    assert check_written(Policy.default(), "510-555-1212") == ("+15105551212", None)
    number, refusal = check_written(Policy.default(), "876 555 0123")
    assert number is None and refusal.reason == BLOCKED
    number, refusal = check_written(Policy.default(), "call me")
    assert number is None and refusal.reason == NOT_E164


def test_a_refusal_is_logged_with_the_number_masked(capsys):
    logs.configure()
    assert not Policy.default().admit("+18765550123", "test")
    assert Policy.default().admit("+15105551212", "test")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [line for line in lines if line["message"] == "destination refused"]
    assert line["number"] == "+*******0123"
    assert (line["where"], line["reason"], line["rule"]) == (
        "test",
        BLOCKED,
        "outbound/blocked_prefixes +1876",
    )
    assert "8765550123" not in json.dumps(lines)


def test_require_raises_the_api_error():
    destinations.require(None, "to", "api")
    with pytest.raises(ValidationError) as raised:
        destinations.require(Policy.default().check("+19005550123"), "to", "api")
    assert (raised.value.field, raised.value.reason) == ("to", BLOCKED)


def test_the_policy_loads_no_aws_sdk():
    code = (
        "import sys; import chalicelib.guards.destinations, chalicelib.twimlets.dialing, "
        "chalicelib.twimlets.conference; "
        "print([m for m in sys.modules if m.startswith(('boto', 'botocore'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _reference_check(allowed: tuple[str, ...] | None, blocked: tuple[str, ...], number: str) -> str:
    """The policy's rule written out directly: every prefix compared character by character."""

    def matches(prefix: str) -> bool:
        return len(prefix) <= len(number) and all(
            p == "X" or p == n for p, n in zip(prefix, number, strict=False)
        )

    allowed_length = 0
    if allowed is not None:
        allowed_length = max((len(p) for p in allowed if matches(p)), default=-1)
        if allowed_length < 0:
            return NOT_ALLOWED
    hits = [p for p in blocked if matches(p) and len(p) > allowed_length]
    return f"{BLOCKED} {max(hits, key=len)}" if hits else "ok"


prefixes = st.lists(st.text("12349X", min_size=1, max_size=5).map("+".__add__), max_size=6)


@settings(max_examples=400, deadline=None)
@example(allowed=("+1",), blocked=("+1", "+12"), number="+1234")  # the longest blocked decides
@example(allowed=("+12",), blocked=("+1X",), number="+1234")  # equal length: allowed wins
@given(
    allowed=st.none() | prefixes.map(tuple),
    blocked=prefixes.map(tuple),
    number=st.builds(
        "+{}{}".format, st.sampled_from("1234"), st.text("123490", min_size=1, max_size=8)
    ),
)
def test_the_compiled_policy_decides_as_the_rule_says(allowed, blocked, number):
    refusal = Policy(allowed, blocked).check(number)
    got = "ok" if refusal is None else refusal.reason
    if refusal is not None and refusal.reason == BLOCKED:
        got = f"{BLOCKED} {refusal.rule.rsplit(' ', 1)[1]}"
    expected = _reference_check(allowed, blocked, number)
    if expected.startswith(BLOCKED) and got.startswith(BLOCKED):
        # Two blocked prefixes of the same length may both match; either names the rule.
        assert len(got) == len(expected)
    else:
        assert got == expected
