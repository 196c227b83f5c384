"""Switchboard made eager, plus the AWS and Twilio clients built at module scope."""

from __future__ import annotations

import boto3
from twilio.rest import Client

from bench.variants.eager_app import app  # noqa: F401

ssm = boto3.client("ssm")
dynamodb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
# Obviously fake credentials: building the client makes no request.
twilio = Client("AC" + "0" * 31 + "1", "local-demo-auth-token-not-a-secret")
