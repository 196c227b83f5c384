"""Which senders Twilio accepts, by kind; the owner's alphanumeric list."""

from __future__ import annotations

import pytest

from chalicelib.guards import senders


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("+14155550100", senders.NUMBER),
        ("MG" + "0123456789abcdef" * 2, senders.SERVICE),
        ("Acme", senders.ALPHANUMERIC),
        ("Acme Shop 1", senders.ALPHANUMERIC),
        ("A", senders.ALPHANUMERIC),
        ("12345", None),  # alphanumeric IDs need a letter
        ("Acme Widgets", None),  # 12 characters: one too many
        ("Acme-Shop", None),
        (" Acme", None),
        ("Café", None),
        ("+0414555", None),
        ("MG123", senders.ALPHANUMERIC),  # too short for a SID: a name, which must be listed
        ("", None),
    ],
)
def test_kind(text, kind):
    assert senders.kind(text) == kind


class Values:
    def __init__(self, value):
        self.value = value

    def optional(self, name):
        assert name == senders.ALPHANUMERIC_PARAMETER
        return self.value


def test_listed_alphanumeric_ignores_case_and_spaces_around():
    assert senders.listed_alphanumeric(Values(" Acme ,SHOP,, ")) == {"acme", "shop"}
    assert senders.listed_alphanumeric(Values(None)) == frozenset()
