"""Switchboard with its DynamoDB, SQS and SSM calls made through boto3 clients, as before
chalicelib.awsjson: what the own client buys, measured side by side."""

from __future__ import annotations

import re
from typing import Any

from app import app, dispatch_due, reconcile_sending, send_worker  # noqa: F401
from chalicelib import awsjson


def _call(self: awsjson.Service, action: str, request: dict[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib import aws

    client = aws.client(
        self.name,
        connect_timeout=self.connect_timeout,
        read_timeout=self.read_timeout,
        attempts=self.attempts,
    )
    try:
        answer = getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower())(**request)
    except ClientError as exc:
        response = exc.response
        raise awsjson.AwsError(
            action,
            response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400),
            response.get("Error", {}).get("Code", ""),
            {"Item": response["Item"]} if "Item" in response else {},
        ) from exc
    except BotoCoreError as exc:
        raise awsjson.AwsError(action, 0, type(exc).__name__) from exc
    answer.pop("ResponseMetadata", None)
    return answer


awsjson.Service.call = _call  # type: ignore[method-assign]
