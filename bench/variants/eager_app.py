"""Switchboard with every import its routes make lazily done at import, as most apps do."""

from __future__ import annotations

import botocore.config
import botocore.exceptions
import botocore.session  # noqa: F401
import twilio.http.http_client
import twilio.rest  # noqa: F401

from app import app  # noqa: F401
from chalicelib.api import (
    gate,  # noqa: F401
    idempotency,  # noqa: F401
)
from chalicelib.aws import jobs, queue, storage  # noqa: F401
from chalicelib.messaging import broadcasts, calls, inbound, outbound, status, timing  # noqa: F401
from chalicelib.telephony import twilio_rest  # noqa: F401
from chalicelib.twimlets import (  # noqa: F401
    conference,
    dialing,
    holdmusic,
    menu,
    simple,
    voicemail,
)
from chalicelib.webhooks import voice  # noqa: F401
from chalicelib.worker import dispatch, notifications, sender  # noqa: F401
