"""Run the schedule triggers and the queue worker locally, as EventBridge and Lambda's SQS
event source would (chalice local runs neither).

`python -m devkit.worker` polls the send queue (two pollers, batches of ten, as the deployed
event source mapping's maximum concurrency and batch size), deletes what the handler
acknowledges and leaves its batchItemFailures for redelivery; it ticks the dispatcher every few
seconds and reconcile every minute.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from typing import Any

from devkit.events import LambdaContext


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages."""
    region = queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def schedule_event(rule: str) -> dict[str, Any]:
    """The event an EventBridge schedule sends."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
        "detail": {},
    }


class QueueDriver:
    """Receives from the real queue and hands batches to the worker handler."""

    def __init__(self, sqs: Any, queue_name: str, handler: Any) -> None:
        self.sqs = sqs
        self.url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.handler = handler

    def poll_once(self, *, wait: int = 0, replay_failures: bool = False) -> tuple[int, int]:
        """One receive and one invocation; returns (received, failed)."""
        answer = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0, 0
        result = self.handler(sqs_event(messages, self.arn), LambdaContext("switchboard-worker"))
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        if replay_failures:
            # Tests stand in for the passing of the backoff: the records come back at once.
            for m in messages:
                if m["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
        return len(messages), len(failed)

    def drain(self, *, replay_failures: bool = False, rounds: int = 10_000) -> int:
        """Poll until a receive comes back empty; returns how many records were handled."""
        handled = 0
        for _ in range(rounds):
            received, _ = self.poll_once(replay_failures=replay_failures)
            if not received:
                return handled
            handled += received
        return handled


def run(*, tick: float = 5.0, reconcile_every: float = 60.0, pollers: int = 2) -> None:
    """Poll and tick until interrupted (the local stack runs this in its own process)."""
    import boto3

    import app as application
    from chalicelib.core import settings

    sqs = boto3.client("sqs")
    driver = QueueDriver(sqs, settings.load().require_queue(), application.send_worker)
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                received, _ = driver.poll_once()
            except Exception as exc:  # keep polling: a local hiccup must not end the stack
                print(f"worker: poll failed: {type(exc).__name__}", flush=True)
                received = 0
            if not received:
                # No long polling: the local moto server answers one request at a time.
                stop.wait(0.5)

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    last_reconcile = 0.0
    try:
        while True:
            application.dispatch_due(schedule_event("dispatch-due"), LambdaContext("dispatch"))
            if time.monotonic() - last_reconcile >= reconcile_every:
                application.reconcile_sending(schedule_event("reconcile"), LambdaContext("rec"))
                last_reconcile = time.monotonic()
            time.sleep(tick)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: python -m devkit.worker [--tick SECONDS]."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tick", type=float, default=5.0)
    args = parser.parse_args(argv)
    run(tick=args.tick)


if __name__ == "__main__":
    main()
