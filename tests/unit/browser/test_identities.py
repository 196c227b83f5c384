"""Twilio Client identities and the Cognito groups claim, as they arrive."""

from __future__ import annotations

import pytest

from chalicelib.browser.tokens import groups
from chalicelib.telephony import identities


@pytest.mark.parametrize("name", ["alice", "a_b", "ann.lee@example.com", "x-1", "a" * 121])
def test_identities_twilio_takes(name):
    assert identities.valid(name)


@pytest.mark.parametrize("name", ["", "a b", "a<b>", "a" * 122, "client:x", "é", "a\nb"])
def test_identities_refused(name):
    assert not identities.valid(name)


def test_addresses_of_browser_users():
    assert identities.of_address("client:alice") == "alice"
    assert identities.of_address("+15105551212") is None
    assert identities.of_address("client:") is None
    assert identities.of_address(None) is None


def test_ring_lists_keep_valid_names_in_order_once():
    raw = "alice, client:bob,,bad name, alice ,carol"
    assert identities.parse_list(raw) == ["alice", "bob", "carol"]
    assert identities.parse_list(None) == []


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("softphone", {"softphone"}),
        ("a,softphone", {"a", "softphone"}),
        ("[a softphone]", {"a", "softphone"}),
        ("[]", set()),
        (["a", "softphone"], {"a", "softphone"}),  # chalice local: the decoded JSON list
        (None, set()),
        (7, set()),
    ],
)
def test_groups_in_every_written_form(claim, expected):
    assert groups({"cognito:groups": claim}) == expected


def test_packaging_refuses_a_template_without_the_pool_or_the_authorizer():
    from devkit import cognito

    with pytest.raises(RuntimeError, match="declares no SoftphoneUserPool"):
        cognito.add_to_template({"Resources": {}})
    api = {"RestAPI": {"Properties": {"DefinitionBody": {"securityDefinitions": {}}}}}
    with pytest.raises(RuntimeError, match="no Cognito authorizer"):
        cognito.add_to_template({"Resources": {**api, "SoftphoneUserPool": {}}})
