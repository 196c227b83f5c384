"""The floor: a bare Chalice app answering fixed TwiML, with a queue handler that does nothing."""

from __future__ import annotations

from chalice import Chalice, Response

app = Chalice(app_name="floor")

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello World</Say></Response>'
TWILIO = ["application/x-www-form-urlencoded", "application/json"]


def _twiml() -> Response:
    return Response(body=TWIML, status_code=200, headers={"Content-Type": "text/xml"})


@app.route("/voice", methods=["GET", "POST"], content_types=TWILIO)
def voice_webhook() -> Response:
    return _twiml()


@app.route("/sms", methods=["GET", "POST"], content_types=TWILIO)
def sms_webhook() -> Response:
    return _twiml()


@app.route("/twimlets/{name}", methods=["GET", "POST"], content_types=TWILIO)
def twimlet_webhook(name: str) -> Response:
    return _twiml()


@app.route("/messages", methods=["POST"], content_types=["application/json"])
def send_message() -> Response:
    return Response(body={"id": "fixed", "status": "queued"}, status_code=201)


@app.on_sqs_message(queue="floor-send", batch_size=10)
def send_worker(event: object) -> None:
    return None
