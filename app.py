"""Switchboard: every route, schedule and queue handler, each delegating to chalicelib."""

import os

from chalice import Chalice, CognitoUserPoolAuthorizer, IAMAuthorizer, Rate

from chalicelib.core import logs, snapshot
from chalicelib.runtime import warmup
from chalicelib.webhooks import gate as webhook

# Route modules are imported inside their handlers; which of them, and which SDK clients, are
# loaded during INIT instead is decided per function and memory size at the end of this file.

# Chalice's own log handler stays off: chalicelib.core.logs prints one JSON line per record.
app = Chalice(app_name="switchboard", configure_logs=False)
logs.configure()
app.register_middleware(logs.http_middleware, "http")
app.register_middleware(logs.event_middleware, "sqs")
app.register_middleware(logs.event_middleware, "scheduled")
snapshot.reseed_after_restore()  # SnapStart only: each restored environment its own randomness

# Read when Chalice imports this file to package it: the stage's environment_variables in
# .chalice/config.json are set by then, so each stage's worker reads its own queue.
SEND_QUEUE = os.environ.get("SWITCHBOARD_QUEUE", "switchboard-dev-send")

# Twilio sends GET webhooks without a Content-Type, which Chalice takes for JSON.
TWILIO = ["application/x-www-form-urlencoded", "application/json"]
iam = IAMAuthorizer()
# Bodies that are not JSON reach api.handle, which answers 400 in the API's error shape, rather
# than Chalice's own 415 body.
JSON_API = ["application/json", "application/x-www-form-urlencoded", "text/plain"]
# Softphone users: the stage's user pool. `make package` (devkit/cognito.py) points the
# authorizer at the pool the template creates; this placeholder names no pool, so a template
# left unrewritten refuses every token (401), never admits one.
softphone_users = CognitoUserPoolAuthorizer(
    "SoftphoneUsers",
    provider_arns=["arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_unset"],
)


# Twilio webhooks: no authorizer, the X-Twilio-Signature checked by webhook.handle is the auth.
@app.route("/voice", methods=["GET", "POST"], content_types=TWILIO)
def voice_webhook():
    from chalicelib.webhooks import voice

    return webhook.handle(app.current_request, voice.greeting)


@app.route("/sms", methods=["GET", "POST"], content_types=TWILIO)
def sms_webhook():
    from chalicelib.messaging import inbound

    return webhook.handle(app.current_request, inbound.receive)


@app.route("/fallback", methods=["GET", "POST"], content_types=TWILIO)
def fallback_webhook():
    from chalicelib.webhooks import voice

    return webhook.handle(app.current_request, voice.apology, fallback=True)


@app.route("/twimlets/{name}", methods=["GET", "POST"], content_types=TWILIO)
def twimlet_webhook(name):
    from chalicelib import twimlets

    return webhook.handle(app.current_request, twimlets.answer_for(name))


# The worked example of docs/your-own-flow.md: business hours.
@app.route("/hours", methods=["GET", "POST"], content_types=TWILIO)
def hours_webhook():
    from chalicelib.flows import hours

    return webhook.handle(app.current_request, hours.answer)


@app.route("/hours/menu", methods=["GET", "POST"], content_types=TWILIO)
def hours_menu_webhook():
    from chalicelib.flows import hours

    return webhook.handle(app.current_request, hours.menu)


@app.route("/hours/sms", methods=["GET", "POST"], content_types=TWILIO)
def hours_sms_webhook():
    from chalicelib.flows import hours

    return webhook.handle(app.current_request, hours.text)


@app.route("/voice/unanswered", methods=["GET", "POST"], content_types=TWILIO)
def voice_unanswered_webhook():
    from chalicelib.webhooks import voice

    return webhook.handle(app.current_request, voice.unanswered)


# Calls in the browser: the TwiML App's Voice URL, the Voice SDK token and the softphone page.
@app.route("/client/voice", methods=["GET", "POST"], content_types=TWILIO)
def client_voice_webhook():
    from chalicelib.browser import calls

    return webhook.handle(app.current_request, calls.answer)


@app.route("/client/token", methods=["POST"], authorizer=softphone_users, content_types=JSON_API)
def client_token():
    from chalicelib.api import gate as api
    from chalicelib.browser import tokens

    return api.handle(app.current_request, tokens.mint, body=False)


@app.route("/phone", methods=["GET"])
def softphone_page():
    from chalicelib.browser import page

    return page.page()


@app.route("/phone/{name}", methods=["GET"])
def softphone_file(name):
    from chalicelib.browser import page

    return page.asset(name)


@app.route("/status/messages", methods=["GET", "POST"], content_types=TWILIO)
def message_status_webhook():
    from chalicelib.messaging import status

    return webhook.handle(app.current_request, status.message_status)


@app.route("/status/calls", methods=["GET", "POST"], content_types=TWILIO)
def call_status_webhook():
    from chalicelib.messaging import status

    return webhook.handle(app.current_request, status.call_status)


# JSON API for the operator's own systems: IAM (SigV4) authorised.
@app.route("/messages", methods=["POST"], authorizer=iam, content_types=JSON_API)
def send_message():
    from chalicelib.api import gate as api
    from chalicelib.messaging import outbound

    return api.handle(app.current_request, outbound.send_message, idempotent=True)


@app.route("/messages/{id}", methods=["GET"], authorizer=iam)
def get_message(id):
    from chalicelib.api import gate as api
    from chalicelib.messaging import outbound

    return api.handle(app.current_request, outbound.get_message, body=False)


@app.route("/messages/{id}", methods=["DELETE"], authorizer=iam)
def cancel_message(id):
    from chalicelib.api import gate as api
    from chalicelib.messaging import outbound

    return api.handle(app.current_request, outbound.cancel_message, body=False)


@app.route("/broadcasts", methods=["POST"], authorizer=iam, content_types=JSON_API)
def create_broadcast():
    from chalicelib.api import gate as api
    from chalicelib.messaging import broadcasts

    return api.handle(app.current_request, broadcasts.create, idempotent=True)


@app.route("/broadcasts/{id}", methods=["GET"], authorizer=iam)
def get_broadcast(id):
    from chalicelib.api import gate as api
    from chalicelib.messaging import broadcasts

    return api.handle(app.current_request, broadcasts.get, body=False)


@app.route("/broadcasts/{id}", methods=["DELETE"], authorizer=iam)
def cancel_broadcast(id):
    from chalicelib.api import gate as api
    from chalicelib.messaging import broadcasts

    return api.handle(app.current_request, broadcasts.cancel, body=False)


@app.route("/calls", methods=["POST"], authorizer=iam, content_types=JSON_API)
def place_call():
    from chalicelib.api import gate as api
    from chalicelib.messaging import outbound

    return api.handle(app.current_request, outbound.place_call, idempotent=True)


@app.route("/calls/{id}", methods=["GET"], authorizer=iam)
def get_call(id):
    from chalicelib.api import gate as api
    from chalicelib.messaging import calls

    return api.handle(app.current_request, calls.get_call, body=False)


@app.route("/spend", methods=["GET"], authorizer=iam)
def get_spend():
    from chalicelib.api import gate as api
    from chalicelib.guards import costs

    return api.handle(app.current_request, costs.get_spend, body=False)


@app.route("/erasures", methods=["POST"], authorizer=iam, content_types=JSON_API)
def start_erasure():
    from chalicelib.api import erasure
    from chalicelib.api import gate as api

    return api.handle(app.current_request, erasure.start)


@app.route("/erasures/{id}", methods=["GET"], authorizer=iam)
def get_erasure(id):
    from chalicelib.api import erasure
    from chalicelib.api import gate as api

    return api.handle(app.current_request, erasure.get, body=False)


@app.route("/inbound", methods=["GET"], authorizer=iam)
def list_inbound():
    from chalicelib.api import gate as api
    from chalicelib.messaging import inbound

    return api.handle(app.current_request, inbound.list_inbound, body=False)


# Schedules and the queue worker (chalice local runs neither; the local stack does).
@app.schedule(Rate(1, unit=Rate.MINUTES))
def dispatch_due(event):
    from chalicelib.worker import dispatch

    return dispatch.dispatch()


@app.schedule(Rate(15, unit=Rate.MINUTES))
def reconcile_sending(event):
    from chalicelib.worker import dispatch

    return dispatch.reconcile()


@app.on_sqs_message(queue=SEND_QUEUE, batch_size=10, maximum_concurrency=2)
def send_worker(event):
    from chalicelib.aws import jobs

    return jobs.handle_batch(event)


# INIT runs at a full vCPU, the handler at the memory size's share: the worker and the schedules
# load their SDKs here, the API handler only below 1,769 MB (chalicelib/runtime/warmup.py).
warmup.run(warmup.plan(os.environ))
