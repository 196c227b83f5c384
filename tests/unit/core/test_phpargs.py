"""PHP-style request parsing, as twimlets.com read Key[]=, Key[n]= and repeated names."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from chalicelib.core import phpargs


def parsed(query: str) -> dict:
    return phpargs.parse(parse_qsl(query, keep_blank_values=True))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Key=v", {"Key": "v"}),
        ("Key=a&Key=b", {"Key": "b"}),  # the last value wins
        ("Key=", {"Key": ""}),
        ("Key[]=a&Key[]=b", {"Key": {"0": "a", "1": "b"}}),
        ("Key%5B%5D=a&Key%5b%5d=b", {"Key": {"0": "a", "1": "b"}}),  # encoded brackets
        ("Key[5]=later&Key[1]=first", {"Key": {"5": "later", "1": "first"}}),  # insertion order
        ("Key[a]=1&Key[b]=x&Key[a]=2", {"Key": {"a": "2", "b": "x"}}),  # replaced in place
        ("Key[7]=a&Key[]=b", {"Key": {"7": "a", "8": "b"}}),  # next integer index
        ("Key[abc]=a&Key[]=b", {"Key": {"abc": "a", "0": "b"}}),
        ("Key[05]=a&Key[]=b", {"Key": {"05": "a", "0": "b"}}),  # "05" is not an integer key
        ("Key[-3]=a&Key[]=b", {"Key": {"-3": "a", "0": "b"}}),
        ("Key[]=a&Key=s", {"Key": "s"}),  # a later scalar replaces the list
        ("Key=s&Key[]=a", {"Key": {"0": "a"}}),  # and the reverse
        ("message=x", {"message": "x"}),  # case-sensitive
        ("Key[a][b]=v", {"Key": {"a": {"b": "v"}}}),  # nested
        ("Key[][]=v", {"Key": {"0": {"0": "v"}}}),
        ("Key[a]junk=v", {"Key": {"a": "v"}}),  # text after "]" is ignored
        ("Key[a=v", {"Key_a": "v"}),  # unclosed: not an array
        ("a.b=1&c d=2", {"a_b": "1", "c_d": "2"}),
        ("[]=v&=w&[a]=x", {}),  # no name
        ("Key]=v", {"Key]": "v"}),
        ("A=1&B[]=2&A[]=3", {"A": {"0": "3"}, "B": {"0": "2"}}),  # A keeps its first position
    ],
)
def test_parse(query, expected):
    result = parsed(query)
    assert result == expected
    assert list(result) == list(expected)
    for name, value in expected.items():
        if isinstance(value, dict):
            assert list(result[name]) == list(value)


def test_only_the_first_thousand_variables_are_read():
    pairs = [(f"Key[{n}]", str(n)) for n in range(5000)]
    result = phpargs.parse(pairs)
    assert len(result["Key"]) == phpargs.MAX_VARS


def test_too_deep_nesting_is_ignored():
    assert phpargs.parse([("Key" + "[a]" * 65, "v")]) == {}
    assert phpargs.parse([("Key" + "[a]" * 64, "v")]) != {}


@pytest.mark.parametrize(
    ("value", "as_list", "as_keyed"),
    [
        (None, [], {}),
        ("x", ["x"], {"0": "x"}),
        ({"1": "a", "b": "c"}, ["a", "c"], {"1": "a", "b": "c"}),
        ({"1": "a", "n": {"x": "y"}}, ["a"], {"1": "a"}),  # nested arrays are skipped
    ],
)
def test_list_and_keyed_views(value, as_list, as_keyed):
    assert phpargs.as_list(value) == as_list
    assert phpargs.as_keyed(value) == as_keyed


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("00", True),
        (" ", True),
        ("x", True),
        ({}, False),
        ({"0": ""}, True),
    ],
)
def test_truthy(value, truthy):
    assert phpargs.truthy(value) is truthy


def test_filtered_drops_blanks_and_zero_only():
    assert phpargs.filtered(["a", "", "0", " ", "00", "b"]) == ["a", " ", "00", "b"]


def test_trim_is_php_trim():
    assert phpargs.trim(" \t\n\r\0\x0bx\u00a0 ") == "x\u00a0"
