"""Switchboard made eager, plus its AWS and Twilio clients built at module scope."""

from __future__ import annotations

from bench.variants.eager_app import app  # noqa: F401
from chalicelib.aws import clients
from chalicelib.telephony.twilio_rest import Credentials, get_twilio

# The clients the routes would build on first use, built at import instead (same session,
# same patience, so the routes reuse them).
ssm = clients.client("ssm")
dynamodb = clients.client("dynamodb")
sqs = clients.client("sqs")
# Obviously fake credentials: building the client makes no request.
twilio = get_twilio(Credentials("AC" + "0" * 31 + "1", "AC" + "0" * 31 + "1", "not-a-secret"))
