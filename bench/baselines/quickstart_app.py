"""A quickstart-style Twilio app on Chalice, as tutorials write one: the benchmark's baseline.

Everything at module top (twilio.rest, boto3, an SSM client, a DynamoDB Table resource), the
auth token read with GetParameter on first request, RequestValidator on https://domainName +
path; /sms stores the inbound message with the resource's put_item, as tutorials do.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import boto3
from chalice import Chalice, Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

app = Chalice(app_name="quickstart")
ssm = boto3.client("ssm")
table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "switchboard-dev"))

TOKEN_PARAMETER = os.environ.get("AUTH_TOKEN_PARAMETER", "/switchboard/dev/twilio/auth_token")
TWILIO = ["application/x-www-form-urlencoded", "application/json"]
_token: str | None = None


def auth_token() -> str:
    global _token
    if _token is None:
        answer = ssm.get_parameter(Name=TOKEN_PARAMETER, WithDecryption=True)
        _token = answer["Parameter"]["Value"]
    return _token


def form(request: Any) -> dict[str, str]:
    return dict(parse_qsl((request.raw_body or b"").decode("utf-8"), keep_blank_values=True))


def is_valid(request: Any) -> bool:
    context = request.context
    url = "https://" + context["domainName"] + context["path"]
    if request.query_params:
        url += "?" + urlencode(request.query_params)
    params = form(request)
    signature = request.headers.get("X-Twilio-Signature", "")
    return RequestValidator(auth_token()).validate(url, params, signature)


def twiml(document: object) -> Response:
    return Response(body=str(document), status_code=200, headers={"Content-Type": "text/xml"})


@app.route("/voice", methods=["GET", "POST"], content_types=TWILIO)
def voice_webhook() -> Response:
    if not is_valid(app.current_request):
        return Response(body="Forbidden", status_code=403)
    response = VoiceResponse()
    response.say("Hello World")
    return twiml(response)


@app.route("/sms", methods=["GET", "POST"], content_types=TWILIO)
def sms_webhook() -> Response:
    request = app.current_request
    if not is_valid(request):
        return Response(body="Forbidden", status_code=403)
    message = form(request)
    now = time.time()
    table.put_item(
        Item={
            "pk": f"in#{message['MessageSid']}",
            "sid": message["MessageSid"],
            "kind": "inbound",
            "inbound": "inbound",
            "received_at": Decimal(str(now)),  # the resource refuses floats
            "from": message.get("From", ""),
            "to": message.get("To", ""),
            "body": message.get("Body", ""),
            "media_urls": [],
            "expires_at": int(now) + 90 * 86400,
        }
    )
    response = MessagingResponse()
    response.message("Thanks for your message")
    return twiml(response)


@app.route("/twimlets/forward", methods=["GET", "POST"], content_types=TWILIO)
def forward_twimlet() -> Response:
    request = app.current_request
    if not is_valid(request):
        return Response(body="Forbidden", status_code=403)
    response = VoiceResponse()
    response.dial((request.query_params or {}).get("PhoneNumber", ""))
    return twiml(response)


@app.route("/messages", methods=["POST"], content_types=["application/json"])
def send_message() -> Response:
    # IAM-authorised by API Gateway, as Switchboard's: stored, then sent at once.
    payload = app.current_request.json_body or {}
    client = twilio_client()
    sender = os.environ["TWILIO_FROM_NUMBER"]
    sent = client.messages.create(to=payload["to"], from_=sender, body=payload["body"])
    table.put_item(Item={"pk": f"msg#{sent.sid}", "sid": sent.sid, "status": sent.status})
    return Response(body={"id": sent.sid, "status": sent.status}, status_code=201)


def twilio_client() -> Client:
    client = Client(os.environ["TWILIO_ACCOUNT_SID"], auth_token())
    # Only so it can run against the local fake Twilio API; a quickstart leaves it out.
    if os.environ.get("TWILIO_API_BASE_URL"):
        client.api.base_url = os.environ["TWILIO_API_BASE_URL"]
    return client


@app.on_sqs_message(queue="quickstart-send", batch_size=10)
def send_worker(event: Any) -> None:
    client = twilio_client()
    for record in event:
        job = json.loads(record.body)
        sender = os.environ["TWILIO_FROM_NUMBER"]
        client.messages.create(to=job["to"], from_=sender, body=job["body"])
