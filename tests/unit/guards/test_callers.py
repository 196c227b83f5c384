"""guards.callers: written numbers as E.164, switches, bucket and recipient lists."""

from __future__ import annotations

import logging

import pytest

from chalicelib.guards import callers


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("+15105551212", "+15105551212"),
        ("+1 (510) 555-1212", "+15105551212"),
        ("510-555-1212", "+15105551212"),
        ("510.555.1212", "+15105551212"),
        ("1-510-555-1212", "+15105551212"),
        ("15105551212", "+15105551212"),
        ("+44 7700 900123", "+447700900123"),
        ("+51 05551212", "+5105551212"),  # another country: not +15105551212
        (" 447700900123", "+447700900123"),  # a raw "+" in a URL arrives as a space
        (" 15105551212", "+15105551212"),
        # Anything that cannot be read without guessing is no number.
        ("", None),
        ("   ", None),
        ("abc", None),
        ("anonymous", None),
        ("client:alice", None),
        ("5551212", None),  # 7 digits: no area code
        ("0447700900123", None),  # a national prefix, no country code
        ("447700900123", None),  # 12 digits without "+"
        ("0105551212", None),  # 10 digits, not a NANP area code
        ("1105551212", None),
        ("25105551212", None),  # 11 digits not starting with 1
        ("+0123456789", None),
        ("+1234567890123456", None),  # 16 digits
        ("+12345", None),
        ("+1510555121٢", None),  # a non-ASCII digit
        ("510-555-1212 ext 3", None),
    ],
)
def test_e164(written, number):
    assert callers.e164(written) == number


def test_listed_compares_e164_exactly():
    allowed = callers.numbers(["+1 510 555 1212", "", "abc", "+44 7700 900123", "510-555-1212"])
    assert allowed == ["+15105551212", "+447700900123"]
    assert callers.listed("+15105551212", allowed)
    assert callers.listed("5105551212", allowed)
    assert not callers.listed("+5105551212", allowed)
    assert not callers.listed("", allowed)
    assert not callers.listed("anonymous", [])
    assert callers.numbers(["2125550100", "2125550101", "2125550102"], limit=2) == [
        "+12125550100",
        "+12125550101",
    ]


def test_masks():
    assert callers.mask("+15105551212") == "+*******1212"
    assert callers.mask("anonymous") == "anonymous"
    assert callers.mask_email("ops+vm@example.org") == "***@example.org"
    assert callers.mask_email("nonsense") == "***"


@pytest.mark.parametrize(
    ("value", "on"),
    [
        *[("true", True), ("TRUE", True), (" 1 ", True), ("yes", True), ("on", True)],
        *[(None, False), ("", False), ("0", False), ("false", False), ("enabled", False)],
    ],
)
def test_enabled(value, on):
    assert callers.enabled(value) is on


def test_buckets():
    default = callers.allowed_buckets(None)
    assert sorted(default) == sorted(callers.TWILIO_BUCKETS)
    assert all(bucket.owner is None for bucket in default.values())
    assert callers.allowed_buckets("  ") == default
    own = callers.allowed_buckets("my-music:123456789012, twilio\nother.music")
    assert own["my-music"] == callers.Bucket("my-music", "123456789012")
    assert own["other.music"] == callers.Bucket("other.music")
    assert "com.twilio.music.rock" in own
    assert list(callers.allowed_buckets("my-music")) == ["my-music"]


def test_unusable_bucket_entries_are_ignored(caplog):
    caplog.set_level(logging.WARNING)
    assert callers.allowed_buckets("My_Bucket x my-music:12345 ok-bucket") == {
        "ok-bucket": callers.Bucket("ok-bucket")
    }
    assert len(caplog.records) == 3


def test_recipients():
    default = callers.allowed_recipients(None, "Voicemail@Example.com")
    assert default.allow("ops@example.com")
    assert default.allow("OPS@EXAMPLE.COM")
    assert not default.allow("ops@mail.example.com")
    assert not default.allow("ops@example.org")
    assert not default.allow("a@b@example.com")
    nobody = callers.allowed_recipients(None, None)
    assert not nobody.allow("ops@example.com")
    listed = callers.allowed_recipients("ops@example.org, @example.net; example.io", "v@x.com")
    assert listed.allow("ops@example.org")
    assert not listed.allow("sales@example.org")
    assert listed.allow("anyone@example.net")
    assert listed.allow("anyone@example.io")
    assert not listed.allow("v@x.com")  # the setting replaces the default
    assert not callers.allowed_recipients("ops@", None).allow("ops@")
