"""The voicemail twimlet: greet, record, then notify by email (SES) and optionally SMS, queued."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

from twilio.twiml.voice_response import VoiceResponse

from chalicelib.aws import clients, parameters
from chalicelib.core import settings
from chalicelib.guards import callers
from chalicelib.twimlets.common import Inputs, Job, add_message, defer_once, read
from chalicelib.webhooks import replay

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

GREETING = "Please leave a message after the beep."
THANKS = "Thanks. Good bye."
FROM_EMAIL_PARAMETER = "voicemail/from_email"
SMS_LIMIT = 1600  # Twilio's maximum message body
# A plausible single address; SES validates it properly. No spaces or line breaks, one "@".
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_NON_DIGITS = re.compile(r"[^0-9]")
# SES calls run in the queue worker, not in a webhook, but should still fail fast and retry.


class NotificationError(Exception):
    """The voicemail email could not be sent; the queue delivers the job again."""


def phone_format(number: str) -> str:
    """A caller number for people: (916) 555-0123 for NANP, 555-0123 for 7 digits.

    Anything else is shown as received (+447700900123, not the bare digits).
    """
    only = _NON_DIGITS.sub("", number)
    if len(only) == 11 and only.startswith("1"):
        only = only[1:]
    if len(only) == 10:
        return f"({only[:3]}) {only[3:6]}-{only[6:]}"
    if len(only) == 7:
        return f"{only[:3]}-{only[3:]}"
    return number.strip()


def email_message(caller: str, recording_url: str, transcription: str | None) -> tuple[str, str]:
    """The original's subject and body; the transcription section only when there is one."""
    formatted = phone_format(caller)
    # A header cannot hold line breaks.
    subject = " ".join(f"New Voicemail Message from {formatted}".split())
    body = f"You have a new voicemail from {formatted}\n\n"
    if transcription is not None:
        body += f"Text of the transcribed voicemail:\n{transcription}.\n\n"
    body += f"Click this link to listen to the message:\n{recording_url}.mp3"
    return subject, body


def sms_text(caller: str, recording_url: str, transcription: str | None) -> str:
    """The SMS alert: who called, the transcription when there is one, the recording link."""
    head = f"New voicemail from {phone_format(caller)}"
    link = f"\n{recording_url}.mp3" if recording_url else ""
    if not transcription:
        return f"{head}.{link}"
    room = SMS_LIMIT - len(head) - len(link) - 2
    if len(transcription) > room:
        transcription = transcription[: max(room - 1, 0)] + "…"
    return f"{head}: {transcription}{link}"


def sms_recipient(value: str) -> str | None:
    """NotifySms as an E.164 number, or None.

    A raw "+" in a hand-written URL arrives as a space; it is read as the "+" it was meant to be.
    """
    number = value.strip()
    if value.startswith(" ") and not number.startswith("+"):
        number = "+" + number
    return number if _E164.fullmatch(number) else None


def notifications(
    *,
    email: str,
    notify_sms: str,
    caller: str,
    recording_url: str,
    transcription: str | None,
    recipients: callers.Recipients,
    event: str = "",
) -> list[Job]:
    """The jobs that tell the mailbox owner: an email when Email is set, an SMS with NotifySms.

    Separate jobs, so a failing SMS is retried without sending the email again and vice versa.
    event names the Twilio event they answer (the recording, or its transcription): each job is
    queued once per event however often the webhook comes. Only addresses recipients allows
    are e-mailed: a URL must not turn the verified SES sender into a relay.
    """
    reference = recording_url.rstrip("/").rsplit("/", 1)[-1]

    def once(kind: str, recipient: str) -> str:
        return f"{event}:{kind}:{_digest(recipient)}" if event else ""

    jobs = []
    if _EMAIL.fullmatch(email) and not recipients.allow(email):
        logger.warning(
            "voicemail e-mail refused: recipient not allowed",
            extra={"email": callers.mask_email(email), "parameter": callers.RECIPIENTS_PARAMETER},
        )
    elif _EMAIL.fullmatch(email):
        payload = {
            "email": email,
            "caller": caller,
            "recording_url": recording_url,
            "transcription": transcription,
        }
        jobs.append(Job("voicemail_notification", payload, reference, once("email", email)))
    elif email:
        logger.warning("voicemail Email is not an address; no email sent")
    if notify_sms:
        to = sms_recipient(notify_sms)
        if to:
            body = sms_text(caller, recording_url, transcription)
            key = once("sms", to)
            payload = {"to": to, "body": body, **({"event": key} if key else {})}
            jobs.append(Job("sms_notification", payload, reference, key))
        else:
            logger.warning("voicemail NotifySms is not an E.164 number; no SMS sent")
    if not jobs:
        logger.warning("voicemail recorded with nobody to notify", extra={"recording": reference})
    return jobs


def voicemail(inputs: Inputs, *, recipients: callers.Recipients) -> tuple[str, list[Job]]:
    """The voicemail TwiML for this stage, and the notifications to queue (e-mails only to
    the addresses recipients allows)."""
    email = inputs.conf("Email") or ""
    notify_sms = inputs.conf("NotifySms") or ""
    caller = inputs.first_field("From", "Caller")
    recording_url = inputs.field("RecordingUrl")
    # Notifications are keyed by the recording: without a well-formed RecordingSid (a re-cut
    # request) nobody is notified.
    recording = inputs.field("RecordingSid")
    if not replay.is_sid(recording, "RE"):
        recording = ""

    status = inputs.field("TranscriptionStatus").lower()
    if status in ("completed", "failed"):
        # The transcribeCallback: notify, and answer an empty 200 (Twilio reads nothing here).
        transcription = inputs.field("TranscriptionText") if status == "completed" else None
        if not recording:
            logger.warning("voicemail transcription without a well-formed RecordingSid")
            return "", []
        jobs = notifications(
            email=email,
            notify_sms=notify_sms,
            caller=caller,
            recording_url=recording_url,
            transcription=transcription,
            recipients=recipients,
            event=f"voicemail-transcription:{recording}",
        )
        return "", jobs

    transcribe = inputs.conf("Transcribe") or ""
    transcribing = not transcribe or transcribe.lower() == "true"
    response = VoiceResponse()
    if recording_url:
        response.say(THANKS)
        response.hangup()
        if transcribing:
            # The notification waits for the transcribeCallback.
            return str(response), []
        if not recording:
            logger.warning("voicemail recording without a well-formed RecordingSid")
            return str(response), []
        jobs = notifications(
            email=email,
            notify_sms=notify_sms,
            caller=caller,
            recording_url=recording_url,
            transcription=None,
            recipients=recipients,
            event=f"voicemail-recording:{recording}",
        )
        return str(response), jobs

    add_message(response, inputs.conf("Message"), trimmed=True, default=GREETING)
    if transcribing:
        # Email is encoded here (the original pasted it raw, so a "+" came back as a space).
        callback = [("Email", email)]
        if notify_sms:
            callback.append(("NotifySms", notify_sms))
        response.record(transcribe="true", transcribe_callback=inputs.url("voicemail", callback))
    else:
        response.record()
    return str(response), []


def voicemail_webhook(verified: VerifiedRequest, parameters: Parameters) -> str:
    """GET/POST /twimlets/voicemail."""
    twiml, jobs = voicemail(read(verified), recipients=_recipients(parameters))
    defer_once(verified, jobs)
    return twiml


def _recipients(values: Parameters) -> callers.Recipients:
    """The addresses voicemail may e-mail: twimlets/voicemail_recipients, else the sender's
    own domain (deliberate departure: the original e-mailed whatever address the URL held)."""
    return callers.allowed_recipients(
        values.optional(callers.RECIPIENTS_PARAMETER), values.optional(FROM_EMAIL_PARAMETER)
    )


def get_ses_client() -> Any:
    """This container's SES client (the worker sends the emails, at its patience)."""
    return clients.client("ses")


def reset() -> None:
    """Forget the AWS clients, so the next send uses the current environment (tests)."""
    clients.reset()


def deliver_voicemail_notification(payload: dict[str, Any]) -> None:
    """Email a voicemail's link, and its transcription when there is one, through SES.

    The queue worker's handler for "voicemail_notification" jobs; the sender is the parameter
    voicemail/from_email.

    Raises:
        NotificationError: SES refused the email or could not be reached.
        MissingParameterError: voicemail/from_email is not set.
        ParameterStoreError: the parameters could not be read.
    """
    # Only where AWS is called: /voice and the twimlets that write nothing load no botocore.
    from botocore.exceptions import BotoCoreError, ClientError

    values = parameters.load(settings.load())
    sender = values.require(FROM_EMAIL_PARAMETER)
    # Checked again where the e-mail leaves: the parameter may have changed since the call.
    if not _recipients(values).allow(payload["email"]):
        logger.warning(
            "voicemail e-mail refused: recipient not allowed",
            extra={
                "email": callers.mask_email(payload["email"]),
                "parameter": callers.RECIPIENTS_PARAMETER,
            },
        )
        return
    subject, body = email_message(
        payload.get("caller") or "",
        payload.get("recording_url") or "",
        payload.get("transcription"),
    )
    try:
        get_ses_client().send_email(
            Source=sender,
            Destination={"ToAddresses": [payload["email"]]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
            },
        )
    except (BotoCoreError, ClientError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
        logger.error("voicemail email not sent", extra={"error": type(exc).__name__, "code": code})
        raise NotificationError(
            f"SES did not send the email: {code or type(exc).__name__}"
        ) from exc
    logger.info("voicemail email sent")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
