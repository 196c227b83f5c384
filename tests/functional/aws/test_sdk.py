"""Storage, the queue and the parameter walk through botocore against a moto server over HTTP:
the conditional-write semantics, and every SDK failure turned into the module's own error."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib.aws import clients, parameters, queue, storage
from devkit import resources


@pytest.fixture
def table(ssm: Any) -> storage.Table:
    storage.reset()
    return storage.Table(resources.names("dev")["MessagesTable"])


def test_items_round_trip_with_every_kind_of_value(table: storage.Table) -> None:
    item = {"pk": "msg#1", "body": "hé llo", "n": 3, "f": 1.5, "raw": b"\x00", "tags": ["a"]}
    table.put(item)
    assert table.get("msg#1") == item
    assert table.get("msg#missing") is None


def test_a_failed_condition_carries_the_item_as_it_is_now(table: storage.Table) -> None:
    table.put({"pk": "msg#1", "status": "sent"})
    with pytest.raises(storage.ConditionFailedError) as failed:
        table.update(
            "msg#1",
            "SET #s = :new",
            condition="#s = :old",
            names={"#s": "status"},
            values={":new": "sending", ":old": "queued"},
        )
    assert failed.value.current == {"pk": "msg#1", "status": "sent"}
    with pytest.raises(storage.ConditionFailedError):
        table.put({"pk": "msg#1"}, condition="attribute_not_exists(pk)")
    assert table.get("msg#1") == {"pk": "msg#1", "status": "sent"}  # nothing half-written


def test_batches_and_queries_page_through_everything(table: storage.Table) -> None:
    items = [
        {"pk": f"msg#{i:03}", "broadcast": "b1", "state_at": i, "status": "queued"}
        for i in range(60)
    ]
    table.put_many(items)
    found = table.get_many([f"msg#{i:03}" for i in range(0, 60, 2)] + ["msg#nope"])
    assert sorted(found) == [f"msg#{i:03}" for i in range(0, 60, 2)]
    listed = list(table.query_all(storage.BY_BROADCAST, "broadcast", "b1", limit=7))
    assert len(listed) == 60


def test_an_aws_error_becomes_a_storage_error_naming_its_code(ssm: Any) -> None:
    storage.reset()
    with pytest.raises(storage.StorageError, match="GetItem failed: ResourceNotFoundException"):
        storage.Table("no-such-table").get("msg#1")


def test_an_unreachable_endpoint_fails_fast_as_our_own_errors(
    ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    clients.reset()
    started = time.monotonic()
    with pytest.raises(storage.StorageError, match="EndpointConnectionError"):
        storage.Table("t").get("msg#1")
    with pytest.raises(queue.QueueError, match="EndpointConnectionError"):
        queue.send("switchboard-dev-send", {"kind": "send"})
    with pytest.raises(parameters.ParameterStoreError, match="EndpointConnectionError"):
        parameters.fetch_by_path("/switchboard/dev")
    assert time.monotonic() - started < 5  # refused at once, retried once, not for minutes


def test_a_hanging_store_gives_up_within_the_webhook_budget(
    ssm: Any, monkeypatch: pytest.MonkeyPatch, hanging_endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", hanging_endpoint)
    clients.reset()
    started = time.monotonic()
    with pytest.raises(storage.StorageError, match="ReadTimeoutError"):
        storage.Table("t").get("msg#1")
    elapsed = time.monotonic() - started
    web = clients.WEBHOOK
    assert elapsed < web.attempts * (web.connect_timeout + web.read_timeout) + 2


def test_a_missing_queue_is_a_queue_error(ssm: Any) -> None:
    queue.reset()
    with pytest.raises(queue.QueueError, match="GetQueueUrl failed"):
        queue.send("no-such-queue", {"kind": "send"})


def test_the_parameter_walk_reads_every_page(ssm: Any) -> None:
    for i in range(25):  # GetParametersByPath answers at most 10 per page
        ssm.put_parameter(Name=f"/switchboard/many/p{i:02}", Value=str(i), Type="String")
    ssm.put_parameter(Name="/switchboard/many/deep/x", Value="deep", Type="SecureString")
    clients.reset()
    values = parameters.fetch_by_path("/switchboard/many")
    assert len(values) == 26
    assert values["p07"] == "7" and values["deep/x"] == "deep"
    # One name straight from SSM (the forced read after a signature mismatch).
    assert parameters.fetch_one("/switchboard/many/p07") == "7"
    assert parameters.fetch_one("/switchboard/many/none") is None
