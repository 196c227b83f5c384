"""The JSON API's edges: input no request can make into a 500 or a 503 that a retry cannot fix."""

from __future__ import annotations

import itertools
import threading

import pytest

TO = "+15105551212"
THREADS = 48
EXTREMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("instant", EXTREMES)
@pytest.mark.parametrize("route", ["/messages", "/broadcasts"])
def test_send_at_at_the_ends_of_the_calendar_is_400(caller, twilio, route, instant):
    to = TO if route == "/messages" else [TO]
    response = caller.api(route, {"to": to, "body": "x", "send_at": instant})
    assert response["statusCode"] == 400, response["json"]
    assert response["json"]["error"]["field"] == "send_at"
    assert twilio.messages == []


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00", "9999-12-31T23:59:59"])
def test_a_local_send_at_at_the_ends_of_the_calendar_is_400(caller, instant):
    payload = {"to": TO, "body": "x", "send_at": instant, "timezone": "Asia/Tokyo"}
    if instant.startswith("9999"):
        payload["timezone"] = "America/Los_Angeles"
    response = caller.api("/messages", payload)
    assert response["statusCode"] == 400, response["json"]
    assert response["json"]["error"]["field"] == "send_at"


@pytest.mark.parametrize("instant", EXTREMES)
def test_since_at_the_ends_of_the_calendar_is_400(caller, instant):
    from urllib.parse import quote

    response = caller.api(f"/inbound?since={quote(instant)}", method="GET")
    assert response["statusCode"] == 400, response["json"]
    assert response["json"]["error"]["field"] == "since"


LONE = '"\\ud800"'  # JSON's escape text for a lone surrogate: valid JSON, not encodable text


@pytest.mark.parametrize(
    ("route", "fields", "field"),
    [
        ("/messages", f'"to": {LONE}, "body": "x"', "to"),
        ("/messages", f'"to": "{TO}", "from": {LONE}, "body": "x"', "from"),
        ("/messages", f'"to": "{TO}", "body": {LONE}', "body"),
        (
            "/messages",
            f'"to": "{TO}", "body": "x", "media_urls": ["https://x.example/\\ud800"]',
            "media_urls",
        ),
        ("/messages", f'"to": "{TO}", "body": "x", "timezone": {LONE}', "timezone"),
        ("/messages", f'"to": "{TO}", "body": "x", {LONE}: 1', None),
        ("/broadcasts", f'"to": ["{TO}", {LONE}], "body": "x"', "to"),
        ("/broadcasts", f'"to": ["{TO}"], "body": {LONE}', "body"),
        ("/calls", f'"to": "{TO}", "url": "https://x.example/\\ud800"', "url"),
        ("/calls", f'"to": "{TO}", "twiml": "<Response>\\ud800</Response>"', "twiml"),
        ("/calls", f'"to": "{TO}", "say": {LONE}', "say"),
    ],
)
def test_a_lone_surrogate_is_400_naming_its_field(caller, twilio, route, fields, field):
    response = caller.api(route, "{" + fields + "}")
    assert response["statusCode"] == 400, response["json"]
    if field is not None:
        assert response["json"]["error"]["field"] == field
    assert twilio.messages == [] and twilio.calls == []


def test_a_lone_surrogate_in_the_idempotency_key_is_400(caller, twilio):
    response = caller.api(
        "/messages", {"to": TO, "body": "x"}, headers={"Idempotency-Key": "\ud800"}
    )
    assert response["statusCode"] == 400
    assert response["json"]["error"]["field"] == "Idempotency-Key"
    assert twilio.messages == []


def test_a_contended_pacing_counter_still_gives_every_sender_its_own_slot(app):
    # Many senders reserving at once against the real table: each must get a slot, and the
    # slots must keep the rate (no two closer than the interval), however often they collide.
    from chalicelib.messaging import deps, pacing

    table = deps.table()
    now = 1_800_000_000.0
    slots: list[float] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def reserve() -> None:
        start.wait()
        try:
            slots.extend(pacing.reserve(table, 1, 10.0, now))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reserve) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ordered = sorted(slots)
    assert len(ordered) == THREADS
    assert all(b - a >= 0.1 - 0.005 for a, b in itertools.pairwise(ordered))
    assert ordered[0] == pytest.approx(now)
