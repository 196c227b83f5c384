"""Notification jobs: SMS to the owner (moderators, voicemail), sent as tracked messages."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from chalicelib.api import validation
from chalicelib.aws import jobs, parameters
from chalicelib.core import settings
from chalicelib.guards import destinations
from chalicelib.messaging import deps, messages

logger = logging.getLogger(__name__)


def sms_notification(payload: dict[str, Any]) -> None:
    """Job "sms_notification" {"to", "body", "media_urls"?}: queue it as a message, once.

    The message id derives from the Twilio event the job answers (payload "event"), or else the
    queue record's id, so a redelivered or duplicated job queues nothing new.

    A destination the policy refuses (guards.destinations) is logged and dropped.

    Raises:
        MissingParameterError: twilio/default_from is not set (the job is retried, then
            dead-lettered, and the log says which parameter).
    """
    to = str(payload.get("to", ""))
    if not validation.E164.fullmatch(to):
        logger.warning("notification to a number that is not E.164 dropped")
        return
    config = settings.load()
    values = parameters.load(config)
    # Refused for good: dropped (logged), not retried, as a number that is not E.164.
    if not destinations.Policy.from_parameters(values).admit(to, "notification"):
        return
    sender = values.require("twilio/default_from")
    job = jobs.current()
    seed = payload.get("event") or (job.message_id if job else repr(sorted(payload.items())))
    message_id = "ntf-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    status_callback = f"{config.public_url}/status/messages" if config.public_url else None
    messages.queue_message(
        deps.table(config),
        message_id,
        to=to,
        sender=sender,
        body=str(payload.get("body", ""))[: messages.MAX_BODY],
        media_urls=list(payload.get("media_urls") or [])[:10],
        status_callback=status_callback,
        retention_days=config.retention_days,
    )
