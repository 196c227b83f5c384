"""Switchboard with every import its routes make lazily done at import, as most apps do."""

from __future__ import annotations

import boto3  # noqa: F401
import botocore.config  # noqa: F401
import twilio.rest  # noqa: F401

from app import app  # noqa: F401
from chalicelib import (  # noqa: F401
    api,
    broadcasts,
    calls,
    dispatch,
    idempotency,
    notifications,
    outbound,
    queue,
    sender,
    status,
    storage,
    timing,
    twilio_rest,
)
from chalicelib.twimlets import (  # noqa: F401
    conference,
    dialing,
    holdmusic,
    menu,
    simple,
    voicemail,
)
