"""`python -m devkit softphone add-user|users` against the moto server's Cognito."""

from __future__ import annotations

import pytest

from devkit import cli, cognito, stack


@pytest.fixture
def local_pool(ssm, moto_url, monkeypatch):
    """The local stack's pool, as `make run` creates it, and its state file pointing here."""
    monkeypatch.setattr(stack, "read_state", lambda: {"moto_url": moto_url})
    return cognito.create_local(stack._client("cognito-idp", moto_url), "dev")


def run(*argv: str) -> int:
    args = cli.build_parser().parse_args(["softphone", *argv])
    return args.func(args)


def test_a_user_added_signs_in_with_the_one_time_password_then_sets_their_own(
    local_pool, moto_url, capsys
):
    assert run("add-user", "bob") == 0
    out = capsys.readouterr().out
    password = out.split("first sign-in): ")[1].strip()
    assert len(password) == 16
    answer = cognito.sign_in(moto_url, local_pool["client_id"], "bob", password)
    assert answer["ChallengeName"] == "NEW_PASSWORD_REQUIRED"  # the page's second form
    assert run("users") == 0
    listed = capsys.readouterr().out
    assert "bob" in listed and cognito.DEMO_USER in listed


def test_a_name_that_cannot_be_an_identity_is_refused_before_cognito(local_pool):
    with pytest.raises(SystemExit, match="cannot be a Twilio Client identity"):
        run("add-user", "bob smith")


def test_a_user_who_exists_already_is_one_line(local_pool):
    with pytest.raises(SystemExit, match="Cognito refused: UsernameExistsException"):
        run("add-user", cognito.DEMO_USER)


def test_without_a_stage_or_a_local_stack_it_says_what_to_do(ssm, monkeypatch):
    monkeypatch.setattr(stack, "read_state", dict)
    with pytest.raises(SystemExit, match="pass --stage, or start the local stack"):
        run("users")


def test_one_time_passwords_meet_the_pools_policy():
    from devkit.softphone_cli import one_time_password

    for _ in range(50):
        password = one_time_password()
        assert len(password) == 16 and not password.isalpha() and not password.isdigit()
        assert password.lower() != password and password.upper() != password
