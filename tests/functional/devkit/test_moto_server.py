"""devkit.moto_server's SQS speed-ups answer what moto itself would."""

from __future__ import annotations

import boto3


def test_sqs_counts_delays_and_visibility_as_before(moto_url: str) -> None:
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="AKIAFAKEFAKEFAKEFAKE",
        aws_secret_access_key="fake-secret-for-tests",
    )
    url = sqs.create_queue(QueueName="speed-up-check")["QueueUrl"]
    entries = [
        {"Id": str(i), "MessageBody": str(i), "DelaySeconds": 900 * (i >= 3)} for i in range(5)
    ]
    sqs.send_message_batch(QueueUrl=url, Entries=entries)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    assert [m["Body"] for m in got["Messages"]] in (["0"], ["1"], ["2"])
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "2"
    assert counts["ApproximateNumberOfMessagesDelayed"] == "2"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
    # The two still visible come out; the delayed and the in-flight one do not.
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in rest + got["Messages"]) == ["0", "1", "2"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=got["Messages"][0]["ReceiptHandle"], VisibilityTimeout=0
    )
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == [got["Messages"][0]["Body"]]
