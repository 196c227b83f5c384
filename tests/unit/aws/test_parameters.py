"""The parameter cache: TTL, rotation, stale-if-error and fail-closed, on an injected clock."""

import pytest

from chalicelib.aws.parameters import (
    MissingParameterError,
    ParameterCache,
    Parameters,
    ParameterStoreError,
)

PATH = "/switchboard/test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStore:
    """Answers with its current values, or fails while down; counts fetches."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.down = False
        self.fetches = 0

    def __call__(self, path: str) -> dict[str, str]:
        self.fetches += 1
        if self.down:
            raise ParameterStoreError("down")
        return dict(self.values)


@pytest.fixture
def setup():
    clock, store = Clock(), FakeStore({"twilio/auth_token": "one"})
    return clock, store, ParameterCache(store, clock=clock)


def get(cache):
    return cache.get(PATH, ttl=300, max_stale=3600)


def test_cached_for_the_ttl_then_rotated(setup):
    clock, store, cache = setup
    assert get(cache)["twilio/auth_token"] == "one"
    store.values["twilio/auth_token"] = "two"
    clock.now += 299
    assert get(cache)["twilio/auth_token"] == "one"
    assert store.fetches == 1
    clock.now += 2
    assert get(cache)["twilio/auth_token"] == "two"
    assert store.fetches == 2


def test_stale_values_serve_while_refresh_fails_then_expire(setup):
    clock, store, cache = setup
    get(cache)
    store.down = True
    clock.now += 301
    assert get(cache)["twilio/auth_token"] == "one"
    # Backs off instead of paying the store's timeout on every request.
    fetches = store.fetches
    clock.now += 10
    get(cache)
    assert store.fetches == fetches
    clock.now += 3600
    with pytest.raises(ParameterStoreError):
        get(cache)
    assert cache.last_known(PATH)["twilio/auth_token"] == "one"


def test_store_down_with_nothing_cached_fails(setup):
    _, store, cache = setup
    store.down = True
    with pytest.raises(ParameterStoreError):
        get(cache)
    assert cache.last_known(PATH) is None


def test_recovers_after_outage(setup):
    clock, store, cache = setup
    get(cache)
    store.down = True
    clock.now += 301
    get(cache)
    store.down = False
    store.values["twilio/auth_token"] = "three"
    clock.now += 31
    assert get(cache)["twilio/auth_token"] == "three"


def test_clear_forgets(setup):
    _, store, cache = setup
    get(cache)
    cache.clear()
    get(cache)
    assert store.fetches == 2


def test_parameters_require_and_hide_values():
    params = Parameters({"twilio/auth_token": "secret-value", "blank": "  "})
    assert params.require("twilio/auth_token") == "secret-value"
    with pytest.raises(MissingParameterError) as error:
        params.require("blank")
    assert error.value.name == "blank"
    assert params.optional("missing") is None
    assert "secret-value" not in repr(params)
