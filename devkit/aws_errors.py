"""The error answers the AWS fault layer sends, shaped as each service sends its own.

Shapes and codes come from botocore's service models and AWS's API references, so botocore parses
them as the real thing (``response["Error"]["Code"]``, the HTTP status) and its standard retry mode
treats them as it treats AWS's: a 500 is transient, the throttling codes are in its list.

- DynamoDB (awsJson1_0): ``__type`` with the ``com.amazonaws.dynamodb.v20120810#`` namespace,
  ``message``, and the ``x-amz-crc32`` header DynamoDB puts on every answer (botocore checks it).
- SSM (awsJson1_1): ``__type`` is the bare shape name; SSM's shapes carry ``Message``.
- SQS (awsJson1_0 with awsQueryCompatible): ``__type`` namespaced ``com.amazonaws.sqs#`` plus the
  ``x-amzn-query-error: CODE;Sender|Receiver`` header botocore takes the code from; the model
  gives RequestThrottled HTTP 403. Older clients speaking the query protocol get the same codes
  in an ``ErrorResponse`` XML document.
- SES v1 (query protocol): ``ErrorResponse`` XML; throttling is ``Throttling`` ("Maximum sending
  rate exceeded."), HTTP 400.
"""

from __future__ import annotations

import json
import uuid
import zlib
from typing import NamedTuple
from xml.sax.saxutils import escape


class AwsError(NamedTuple):
    """One error as a service sends it: status, JSON ``__type``, query code, fault side, text."""

    status: int
    json_type: str
    query_code: str
    side: str  # "Sender" or "Receiver", as the query protocol (and SQS's header) says
    message: str


_DDB = "com.amazonaws.dynamodb.v20120810#"
_DDB_THROTTLED = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
_INTERNAL_FAILURE = AwsError(
    500,
    "com.amazon.coral.service#InternalFailure",
    "InternalFailure",
    "Receiver",
    "We encountered an internal error. Please try again.",
)

# (service, fault) -> the error; "throttle-ThrottlingException" falls back to "throttle" where the
# service documents no ThrottlingException (SES).
ERRORS: dict[tuple[str, str], AwsError] = {
    ("dynamodb", "500"): AwsError(
        500,
        _DDB + "InternalServerError",
        "InternalServerError",
        "Receiver",
        "Internal server error",
    ),
    ("dynamodb", "throttle"): AwsError(
        400,
        _DDB + "ProvisionedThroughputExceededException",
        "ProvisionedThroughputExceededException",
        "Sender",
        _DDB_THROTTLED,
    ),
    ("dynamodb", "throttle-ThrottlingException"): AwsError(
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "ThrottlingException",
        "Sender",
        "Rate of requests exceeds the allowed throughput.",
    ),
    ("ssm", "500"): AwsError(
        500, "InternalServerError", "InternalServerError", "Receiver", "Internal Server Error"
    ),
    ("ssm", "throttle"): AwsError(
        400, "ThrottlingException", "ThrottlingException", "Sender", "Rate exceeded"
    ),
    ("sqs", "500"): _INTERNAL_FAILURE,
    ("sqs", "throttle"): AwsError(
        403,
        "com.amazonaws.sqs#RequestThrottled",
        "RequestThrottled",
        "Sender",
        "Request is throttled.",
    ),
    ("sqs", "throttle-ThrottlingException"): AwsError(
        400,
        "com.amazon.coral.availability#ThrottlingException",
        "ThrottlingException",
        "Sender",
        "Rate exceeded",
    ),
    ("ses", "500"): _INTERNAL_FAILURE,
    ("ses", "throttle"): AwsError(
        400, "Throttling", "Throttling", "Sender", "Maximum sending rate exceeded."
    ),
}
ERRORS[("ssm", "throttle-ThrottlingException")] = ERRORS[("ssm", "throttle")]
ERRORS[("ses", "throttle-ThrottlingException")] = ERRORS[("ses", "throttle")]

_JSON_VERSION = {"dynamodb": "1.0", "sqs": "1.0", "ssm": "1.1"}
_XML_NAMESPACE = {
    "ses": "http://ses.amazonaws.com/doc/2010-12-01/",
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
}


def render(
    service: str, fault: str, *, json_protocol: bool
) -> tuple[str, list[tuple[str, str]], bytes]:
    """The WSGI status line, headers and body of fault's error as service answers it."""
    error = ERRORS[(service, fault)]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if json_protocol:
        member = "Message" if service == "ssm" else "message"
        body = json.dumps({"__type": error.json_type, member: error.message}).encode()
        headers.append(("Content-Type", f"application/x-amz-json-{_JSON_VERSION[service]}"))
        if service == "dynamodb":
            headers.append(("x-amz-crc32", str(zlib.crc32(body))))
        if service == "sqs":
            headers.append(("x-amzn-query-error", f"{error.query_code};{error.side}"))
    else:
        namespace = _XML_NAMESPACE.get(service, "")
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>{error.side}</Type>'
            f"<Code>{error.query_code}</Code><Message>{escape(error.message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    headers.append(("Content-Length", str(len(body))))
    return f"{error.status} {_REASONS[error.status]}", headers, body


_REASONS = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}
