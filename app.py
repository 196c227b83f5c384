"""Switchboard: every route, schedule and queue handler, each delegating to chalicelib."""

from chalice import Chalice, IAMAuthorizer

from chalicelib import api, logs, outbound, sms, twimlets, voice, webhooks

# Chalice's own log handler stays off: chalicelib.logs prints one JSON line per record.
app = Chalice(app_name="switchboard", configure_logs=False)
logs.configure()
app.register_middleware(logs.http_middleware, "http")

# Twilio sends GET webhooks without a Content-Type, which Chalice takes for JSON.
TWILIO = ["application/x-www-form-urlencoded", "application/json"]
iam = IAMAuthorizer()


# Twilio webhooks: no authorizer, the X-Twilio-Signature checked by webhooks.handle is the auth.
@app.route("/voice", methods=["GET", "POST"], content_types=TWILIO)
def voice_webhook():
    return webhooks.handle(app.current_request, voice.greeting)


@app.route("/sms", methods=["GET", "POST"], content_types=TWILIO)
def sms_webhook():
    return webhooks.handle(app.current_request, sms.auto_reply)


@app.route("/fallback", methods=["GET", "POST"], content_types=TWILIO)
def fallback_webhook():
    return webhooks.handle(app.current_request, voice.apology, fallback=True)


@app.route("/twimlets/{name}", methods=["GET", "POST"], content_types=TWILIO)
def twimlet_webhook(name):
    return webhooks.handle(app.current_request, twimlets.answer_for(name))


# JSON API for the operator's own systems: IAM (SigV4) authorised.
@app.route("/messages", methods=["POST"], authorizer=iam)
def send_message():
    return api.handle(app.current_request, outbound.send_message)


@app.route("/calls", methods=["POST"], authorizer=iam)
def place_call():
    return api.handle(app.current_request, outbound.place_call)
