"""The leanest /sms handler with the SDK Switchboard uses: the limit for a webhook that stores.

A bare Chalice route that reads the auth token once through the AWS Parameters and Secrets
Lambda Extension (one HTTP GET to localhost over a socket), checks X-Twilio-Signature with hmac,
stores the message with one conditional PutItem through a botocore DynamoDB client built on
first use (attribute values written by hand), and answers empty TwiML. Nothing else: no
logging, no settings, no TTL on the token, no error mapping.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import socket
import time
from typing import Any
from urllib.parse import parse_qsl, quote

from chalice import Chalice, Response

app = Chalice(app_name="lean-sdk")

TABLE = os.environ.get("TABLE_NAME", "switchboard-dev")
TOKEN_PARAMETER = os.environ.get("AUTH_TOKEN_PARAMETER", "/switchboard/dev/twilio/auth_token")
RETENTION_S = 90 * 86400
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
TWILIO = ["application/x-www-form-urlencoded"]
_token: str | None = None
_dynamodb: Any = None


def auth_token() -> str:
    """The auth token through the extension, read once per container."""
    global _token
    if _token is None:
        port = int(os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") or 2773)
        query = "name=" + quote(TOKEN_PARAMETER, safe="/") + "&withDecryption=true"
        request = (
            f"GET /systemsmanager/parameters/get?{query} HTTP/1.0\r\n"
            f"X-Aws-Parameters-Secrets-Token: {os.environ.get('AWS_SESSION_TOKEN', '')}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as conn:
            conn.sendall(request.encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        if head.split(b" ", 2)[1] != b"200":
            raise RuntimeError(f"extension answered {head[:40]!r}")
        _token = json.loads(body)["Parameter"]["Value"]
    return _token


def dynamodb() -> Any:
    """The DynamoDB client, built on first use (region, endpoint, credentials: environment)."""
    global _dynamodb
    if _dynamodb is None:
        import botocore.session

        _dynamodb = botocore.session.get_session().create_client("dynamodb")
    return _dynamodb


def signed(url: str, params: list[tuple[str, str]], signature: str) -> bool:
    """Twilio's scheme: HMAC-SHA1 of the URL and the sorted name+value pairs, base64."""
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token().encode(), data.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature)


@app.route("/sms", methods=["POST"], content_types=TWILIO)
def sms_webhook() -> Response:
    request = app.current_request
    context = request.context
    params = parse_qsl((request.raw_body or b"").decode(), keep_blank_values=True)
    url = "https://" + context["domainName"] + context["path"]
    if not signed(url, params, request.headers.get("X-Twilio-Signature", "")):
        return Response(body="Forbidden", status_code=403)
    form = dict(params)
    sid = form.get("MessageSid", "")
    if sid:
        now = time.time()
        count = form.get("NumMedia", "0")
        media = [form.get(f"MediaUrl{i}", "") for i in range(int(count) if count.isdigit() else 0)]
        client = dynamodb()
        # A repeated delivery of the same MessageSid is stored already: the condition fails.
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": "in#" + sid},
                    "sid": {"S": sid},
                    "kind": {"S": "inbound"},
                    "inbound": {"S": "inbound"},
                    "received_at": {"N": repr(now)},
                    "from": {"S": form.get("From", "")},
                    "to": {"S": form.get("To", "")},
                    "body": {"S": form.get("Body", "")},
                    "media_urls": {"L": [{"S": m} for m in media if m]},
                    "expires_at": {"N": str(int(now) + RETENTION_S)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
    return Response(body=EMPTY, status_code=200, headers={"Content-Type": "text/xml"})
