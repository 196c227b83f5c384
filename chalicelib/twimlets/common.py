"""What every twimlet shares: reading inputs, the Say-or-Play rule, texts and generated URLs."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, quote_plus

from chalicelib.core import responses
from chalicelib.telephony.twiml import clean_text
from chalicelib.twimlets import phpargs

if TYPE_CHECKING:
    from chalice.app import Response

    from chalicelib.webhooks.signature import VerifiedRequest

logger = logging.getLogger(__name__)

# One level of PHP backslash escaping: "\'" is "'", "\\" is "\", "\0" is NUL (dropped later).
_SLASHED = re.compile(r"\\(.?)", re.DOTALL)
_NON_DIGITS = re.compile(r"[^0-9]")


class Inputs(NamedTuple):
    """A twimlet request's inputs, read once.

    config: the signed URL's query only (what the twimlet's author wrote, and the markers the
    twimlets put in their own callback URLs). fields: Twilio's own fields, from the query and
    the form body, the body winning, as PHP's $_REQUEST with request_order "GP".
    """

    config: dict[str, phpargs.PhpValue]
    fields: dict[str, phpargs.PhpValue]
    base_url: str
    # The signed URL's query as received, to call this twimlet again with a marker added.
    query: tuple[tuple[str, str], ...] = ()

    def conf(self, name: str) -> str | None:
        """A configuration parameter's string value; None when missing or given as an array."""
        value = self.config.get(name)
        return value if isinstance(value, str) else None

    def is_set(self, name: str) -> bool:
        """The configuration parameter is present, even empty (PHP isset)."""
        return name in self.config

    def field(self, name: str) -> str:
        """A Twilio field's value, "" when missing or not a string."""
        value = self.fields.get(name)
        return value if isinstance(value, str) else ""

    def has_field(self, name: str) -> bool:
        """The Twilio field is present, even empty (PHP isset)."""
        return isinstance(self.fields.get(name), str)

    def first_field(self, name: str, fallback: str) -> str:
        """name when non-empty, else fallback: From/Caller and To/Called."""
        return self.field(name) or self.field(fallback)

    def url(self, twimlet: str, query: Iterable[tuple[str, str]] = ()) -> str:
        """An absolute URL of a twimlet under this app's public base, PHP-encoded query."""
        return twimlet_url(self.base_url, twimlet, query)


def twimlet_url(base_url: str, twimlet: str, query: Iterable[tuple[str, str]] = ()) -> str:
    """An absolute URL of a twimlet under base_url, PHP-encoded query."""
    encoded = encode_query(query)
    return f"{base_url}/twimlets/{twimlet}" + (f"?{encoded}" if encoded else "")


class Redirect(NamedTuple):
    """Answer with an HTTP 302 to location (FailUrl, menu options), as the original did."""

    location: str


def read(verified: VerifiedRequest) -> Inputs:
    """Read a verified request's query and form into Inputs."""
    config = phpargs.parse(verified.query.pairs)
    fields = dict(config)
    fields.update(phpargs.parse(verified.form.pairs))
    return Inputs(
        config=config, fields=fields, base_url=verified.base_url, query=tuple(verified.query.pairs)
    )


def render(result: str | Redirect) -> str | Response:
    """A twimlet's decision as what webhooks.handle serves: TwiML text, or a 302."""
    if isinstance(result, Redirect):
        return responses.redirect(safe_location(result.location))
    return result


def safe_location(location: str) -> str:
    """location fit for a header: controls dropped, spaces and non-ASCII percent-encoded."""
    # PHP's header() refused values with line breaks; a header must not carry them either.
    kept = []
    for char in clean_text(location):
        if 0x20 < ord(char) < 0x7F:
            kept.append(char)
        elif char == " " or ord(char) >= 0x80:
            kept.append(quote(char))
    return "".join(kept)


def php_urlencode(value: str) -> str:
    """PHP urlencode: all but A-Z a-z 0-9 _ . - percent-encoded (upper-case), space as +."""
    return quote_plus(value, safe="").replace("~", "%7E")


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string with names and values PHP-urlencoded, in the order given."""
    return "&".join(f"{php_urlencode(name)}={php_urlencode(value)}" for name, value in pairs)


def text(value: str) -> str:
    """Element text as the original's TwiML library wrote it: entities decoded, then escaped."""
    return clean_text(html.unescape(value))


def attribute(value: str) -> str:
    """An attribute value: escaped by the XML writer, so only forbidden characters go."""
    return clean_text(value)


def stripslashes(value: str) -> str:
    """PHP stripslashes."""
    return _SLASHED.sub(lambda m: "\0" if m.group(1) == "0" else m.group(1), value)


def add_message(
    parent: Any, value: str | None, *, trimmed: bool, default: str | None = None
) -> None:
    """The shared rule: <Play> a value starting with "http", else <Say> it, else the default.

    trimmed selects the "non-empty" test: on the trimmed value (message, whisper, voicemail) or
    on the value itself (menu, conference, holdmusic), so "  " is said by the latter.
    """
    value = value or ""
    if phpargs.trim(value)[:4].lower() == "http":
        parent.play(text(value))
    elif phpargs.trim(value) if trimmed else value:
        parent.say(text(stripslashes(value)))
    elif default is not None:
        parent.say(default)


def timeout(value: str | None, default: int) -> str:
    """A Dial timeout: PHP-truthy values pass through unvalidated, else the default."""
    return attribute(value) if phpargs.truthy(value) else str(default)


def digits(number: str) -> str:
    """Digits only, a leading NANP 1 dropped from 11 digits: "+1 (303) 555-0170" is 3035550170."""
    only = _NON_DIGITS.sub("", number)
    return only[1:] if len(only) == 11 and only.startswith("1") else only


def dial_returned(inputs: Inputs) -> bool:
    """Returning from a <Dial> action: the Dial marker is set and Twilio reported a status."""
    return inputs.is_set("Dial") and bool(
        inputs.field("DialStatus") or inputs.field("DialCallStatus")
    )


def dial_answered(inputs: Inputs) -> bool:
    """The dialled party answered (DialCallStatus completed, or the 2008 API's "answered")."""
    return inputs.field("DialCallStatus") == "completed" or inputs.field("DialStatus") == "answered"


class Job(NamedTuple):
    """A slow side effect (an email, an SMS) for the queue worker, never run in the webhook."""

    kind: str
    payload: dict[str, Any]
    # Logged if the job cannot be queued, so it can be redone by hand (no numbers, no bodies).
    reference: str = ""
    # The Twilio event it answers (a recording, a call joining): queued once per event, however
    # often Twilio, or anyone replaying the signed request, delivers the webhook.
    once: str = ""


def defer(jobs: Iterable[Job]) -> None:
    """Queue jobs; a queue failure is logged and the caller's TwiML is answered regardless."""
    # jobs loads concurrent.futures: only the twimlets that queue a job pay for it.
    from chalicelib.aws import jobs as queue

    for job in jobs:
        try:
            queue.defer(job.kind, job.payload, once=job.once or None)
        except queue.JobQueueError as exc:
            logger.error(
                "twimlet notification not queued",
                extra={"kind": job.kind, "reference": job.reference, "error": type(exc).__name__},
            )


def defer_once(verified: VerifiedRequest, jobs: list[Job]) -> None:
    """Queue jobs on a signed request's first delivery only (see webhooks.replay).

    Nothing to queue, nothing written: the twimlet stays free of storage. When the request
    cannot be remembered, the jobs are logged and not queued, as when the queue is down, and
    the caller's TwiML is answered regardless.
    """
    if not jobs:
        return
    from chalicelib.aws import storage
    from chalicelib.core import settings
    from chalicelib.webhooks import replay

    try:
        table = storage.get_table(settings.load().require_table())
        with replay.once(table, verified) as first:
            if first:
                defer(jobs)
    except (settings.SettingError, storage.StorageError) as exc:
        for job in jobs:
            logger.error(
                "twimlet notification not queued",
                extra={"kind": job.kind, "reference": job.reference, "error": type(exc).__name__},
            )
