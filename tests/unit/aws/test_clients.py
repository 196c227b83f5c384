"""SDK clients: one per service and patience, built lazily, and the worker's patience."""

from collections.abc import Iterator

import pytest

from chalicelib.aws import clients, jobs
from chalicelib.worker import dispatch

seen: list[clients.Patience] = []


def probe(payload: dict) -> None:
    """A job handler that records the patience its AWS calls would use."""
    seen.append(clients._patience.get())


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local-demo-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-demo-secret-key")
    clients.reset()
    seen.clear()
    yield
    clients.reset()


def test_a_client_is_built_once_per_service_and_patience() -> None:
    first = clients.client("dynamodb")
    assert clients.client("dynamodb") is first
    assert clients.client("sqs") is not first
    with clients.patience(clients.WORKER):
        patient = clients.client("dynamodb")
    assert patient is not first
    clients.reset()
    assert clients.client("dynamodb") is not first


def test_webhook_and_worker_clients_have_their_own_timeouts_and_attempts() -> None:
    config = clients.client("dynamodb").meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.0, 2.0)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    # The worst case of one webhook call, attempts x (connect + read), leaves room in 15 s.
    web = clients.WEBHOOK
    assert web.attempts * (web.connect_timeout + web.read_timeout) <= 6
    with clients.patience(clients.WORKER):
        config = clients.client("dynamodb").meta.config
    assert config.read_timeout == clients.WORKER.read_timeout
    assert config.retries["total_max_attempts"] == clients.WORKER.attempts


def test_clients_follow_the_region_and_endpoint_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert clients.client("sqs").meta.region_name == "eu-west-1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clients.reset()
    assert clients.client("sqs").meta.endpoint_url == "http://127.0.0.1:9"


def test_unsigned_clients_for_public_buckets() -> None:
    from botocore import UNSIGNED

    assert clients.client("s3", signature="unsigned").meta.config.signature_version is UNSIGNED


def test_queue_records_run_at_the_worker_patience_in_every_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(jobs.HANDLERS, "probe", f"{__name__}:probe")
    record = {"messageId": "m", "body": '{"kind": "probe", "payload": {}}', "attributes": {}}
    assert jobs.handle_batch({"Records": [record]}) == {"batchItemFailures": []}
    records = [dict(record, messageId=str(i)) for i in range(4)]  # side by side, in threads
    assert jobs.handle_batch({"Records": records}) == {"batchItemFailures": []}
    assert seen == [clients.WORKER] * 5
    assert clients._patience.get() == clients.WEBHOOK  # and only inside the batch


def test_the_dispatchers_threads_keep_the_worker_patience() -> None:
    with clients.patience(clients.WORKER):
        found = dispatch._parallel(lambda _: clients._patience.get(), [1, 2, 3])
    assert found == [clients.WORKER] * 3
