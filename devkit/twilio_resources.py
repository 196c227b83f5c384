"""The local Twilio's Messages and Calls resources: validation, records and pages, in Twilio's
shapes and with its documented errors and magic test numbers (devkit/fake_twilio.py serves them).
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

Pairs = list[tuple[str, str]]
API_VERSION = "2010-04-01"
_ROUTE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/(Messages|Calls)(?:/([^/]+))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_MESSAGE_ADDRESS = re.compile(r"^(whatsapp:)?\+[1-9]\d{1,14}$")  # E.164, or WhatsApp's form
_CALL_TO = re.compile(r"^(\+[1-9]\d{1,14}|client:\S+|sip:\S+@\S+)$")
_SENDER_ID = re.compile(r"^(\d{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$")  # short code or alpha
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")  # two septets each
_CALL_SUBRESOURCES = ("Events", "Notifications", "Recordings", "Payments", "Streams", "Siprec")
# Kept in the stored records (FakeTwilio.messages/calls), left out of Twilio's JSON.
_CALL_SETTINGS = ("url", "twiml", "method", "timeout", "status_callback_event")
_PRIVATE = frozenset(
    (*_CALL_SETTINGS, "status_callback", "status_callback_method", "transcript", "_price")
) | {"_price_due"}

_BAD_TO = "The 'To' number {to} is not a valid phone number."
_BAD_FROM = (
    "The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID."
)
# Twilio's magic test numbers: https://www.twilio.com/docs/iam/test-credentials
_MESSAGE_MAGIC_TO = {
    "+15005550001": (21211, _BAD_TO),
    "+15005550002": (
        21612,
        "The 'To' phone number: {to}, is not currently reachable using the "
        "'From' phone number: {sender} via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number: {to}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
_MESSAGE_MAGIC_FROM = {
    "+15005550001": (21212, _BAD_FROM),
    "+15005550007": (
        21606,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number "
        "for this destination/account.",
    ),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}
_CALL_MAGIC_TO = {
    "+15005550001": (21217, "Phone number is not a valid phone number."),
    "+15005550002": (21214, "'To' phone number cannot be reached"),
    "+15005550003": (
        21215,
        "Account not authorized to call {to}. Perhaps you need to enable some international "
        "permissions",
    ),
    "+15005550004": (21216, "Call blocked by Twilio blocklist"),
}


class ApiError(Exception):
    """An answer in Twilio's error shape."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        info = f"https://www.twilio.com/docs/errors/{self.code}"
        return dict(code=self.code, message=self.message, more_info=info, status=self.status)


@dataclass(frozen=True)
class RecordedRequest:
    """One request to the fake API; credentials other than the username are never kept."""

    method: str
    path: str
    params: list[tuple[str, str]]  # query string, then form body, in order
    username: str | None
    status: int
    # Epoch seconds when the answer was decided (the benchmark's accept times); not compared.
    at: float = field(default=0.0, compare=False)


_SMART_ENCODING = str.maketrans(
    {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "-", "\u2026": "..."}
)


def rewrite_body(body: str) -> str:
    """A body as Twilio may store it: look-alikes swapped for GSM-7 (Smart Encoding), each URL
    replaced by a short link (Link Shortening)."""
    swapped = body.translate(_SMART_ENCODING)
    return re.sub(r"https?://\S+", lambda _: "https://twil.io/" + secrets.token_hex(3), swapped)


def _first(pairs: Pairs, name: str) -> str | None:
    """The first non-blank value of name: Twilio treats a blank parameter as absent."""
    return next((value for key, value in pairs if key == name and value != ""), None)


def _all(pairs: Pairs, name: str) -> list[str]:
    return [value for key, value in pairs if key == name and value != ""]


def _bad(code: int, template: str, **values: str | None) -> ApiError:
    return ApiError(400, code, template.format(**values))


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _segments(body: str) -> int:
    """SMS segments: GSM-7 fits 160 (153 per part); anything else is UCS-2, 70 (67)."""
    if set(body) <= _GSM7 | _GSM7_EXTENDED:
        units, single, part = len(body) + sum(ch in _GSM7_EXTENDED for ch in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


def _formatted(number: str) -> str:
    """Twilio shows NANP numbers as (415) 555-1212 and anything else as given."""
    match = re.fullmatch(r"\+1(\d{3})(\d{3})(\d{4})", number)
    return "({}) {}-{}".format(*match.groups()) if match else number


def _validate_message(form: Pairs) -> None:
    to, sender = _first(form, "To"), _first(form, "From")
    service, body = _first(form, "MessagingServiceSid"), _first(form, "Body")
    media = _all(form, "MediaUrl")
    if to is None:
        raise _bad(21604, "A 'To' phone number is required.")
    if sender is None and service is None:
        raise _bad(21603, "A 'From' phone number is required.")
    if not _MESSAGE_ADDRESS.match(to):
        raise _bad(21211, _BAD_TO, to=to)
    if sender is not None and not (_MESSAGE_ADDRESS.match(sender) or _SENDER_ID.match(sender)):
        raise _bad(21212, _BAD_FROM, sender=sender)
    if service is not None and not _SERVICE_SID.match(service):
        raise _bad(21701, "The Messaging Service Sid {sid} is invalid.", sid=service)
    if body is None and not media:
        raise _bad(21602, "Message body is required.")
    if body is not None and len(body) > 1600:
        raise _bad(21617, "The concatenated message body exceeds the 1600 character limit.")
    if not all(_is_http_url(url) for url in media):
        raise _bad(21620, "Invalid media URL(s)")
    for table, number in ((_MESSAGE_MAGIC_TO, to), (_MESSAGE_MAGIC_FROM, sender)):
        if number in table:
            raise _bad(*table[number], to=to, sender=sender)


def _validate_call(form: Pairs) -> None:
    to, sender = _first(form, "To"), _first(form, "From")
    url, twiml = _first(form, "Url"), _first(form, "Twiml")
    if to is None:
        raise _bad(21201, "No 'To' number is specified")
    if sender is None:
        raise _bad(21213, "No 'From' number is specified")
    if url is None and twiml is None:
        raise _bad(21205, "Url parameter is required.")
    if twiml is None and not _is_http_url(url or ""):
        raise _bad(21205, "Url is not a valid URL: {url}", url=url)
    if not _CALL_TO.match(to):
        raise _bad(21211, "Invalid 'To' Phone Number: {to}", to=to)
    if not _E164.match(sender) or sender == "+15005550001":  # the magic invalid From
        raise _bad(21212, "Invalid 'From' Phone Number: {sender}", sender=sender)
    if twiml is not None and len(twiml) > 4000:
        # 32018 is the code Twilio documents for this limit.
        raise _bad(32018, "Twiml size exceeded maximum allowed value of 4000 characters")
    if to in _CALL_MAGIC_TO:
        raise _bad(*_CALL_MAGIC_TO[to], to=to)


def _resource(prefix: str, account: str, kind: str) -> dict[str, Any]:
    """The fields Messages and Calls share."""
    sid = prefix + secrets.token_hex(16)
    now = format_datetime(datetime.now(UTC).replace(microsecond=0))
    uri = f"/{API_VERSION}/Accounts/{account}/{kind}/{sid}.json"
    return {
        "sid": sid,
        "account_sid": account,
        "api_version": API_VERSION,
        "direction": "outbound-api",
        "date_created": now,
        "date_updated": now,
        "price": None,
        "price_unit": "USD",
        "uri": uri,
    }


def _new_message(account: str, form: Pairs) -> dict[str, Any]:
    _validate_message(form)
    record = _resource("SM", account, "Messages")
    sender, body, media = _first(form, "From"), _first(form, "Body") or "", _all(form, "MediaUrl")
    return record | {
        "to": _first(form, "To"),
        "from": sender,
        "messaging_service_sid": _first(form, "MessagingServiceSid"),
        "body": body,
        # Without a From the service has yet to pick a sender, which Twilio calls "accepted".
        "status": "queued" if sender else "accepted",
        "num_segments": str(1 if media else _segments(body)),  # MMS is one message
        "num_media": str(len(media)),
        "error_code": None,
        "error_message": None,
        "date_sent": None,
        "subresource_uris": {"media": record["uri"].replace(".json", "/Media.json")},
        "status_callback": _first(form, "StatusCallback"),
    }


def _new_call(account: str, form: Pairs) -> dict[str, Any]:
    _validate_call(form)
    record = _resource("CA", account, "Calls")
    to, sender, twiml = _first(form, "To") or "", _first(form, "From") or "", _first(form, "Twiml")
    base, timeout = record["uri"].removesuffix(".json"), _first(form, "Timeout") or ""
    unset = ("start_time", "end_time", "duration", "parent_call_sid", "answered_by", "caller_name")
    unset += ("forwarded_from", "group_sid", "phone_number_sid", "trunk_sid", "annotation")
    record |= dict.fromkeys(unset)  # set only once the call is under way, if ever
    subresources = {name.lower(): f"{base}/{name}.json" for name in _CALL_SUBRESOURCES}
    return record | {
        "to": to,
        "to_formatted": _formatted(to),
        "from": sender,
        "from_formatted": _formatted(sender),
        "status": "queued",
        "queue_time": "0",
        "subresource_uris": subresources,
        "url": None if twiml else _first(form, "Url"),  # Twiml wins when both are given
        "twiml": twiml,
        "method": (_first(form, "Method") or "POST").upper(),
        "status_callback": _first(form, "StatusCallback"),
        "status_callback_event": _all(form, "StatusCallbackEvent"),
        "status_callback_method": (_first(form, "StatusCallbackMethod") or "POST").upper(),
        "timeout": min(int(timeout), 600) if timeout.isdigit() else 60,
    }


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in _PRIVATE}


def _sent_on_dates(record: dict[str, Any], query: Pairs) -> bool:
    """DateSent filters, compared against date_created: the fake never sends, so no date_sent.

    A YYYY-MM-DD value compares days; YYYY-MM-DDThh:mm:ssZ (what twilio-python sends for
    datetimes) compares to the second. "DateSent<" and "DateSent>" are inclusive: on the wire
    they are "DateSent<=X" and "DateSent>=X".
    """
    created = parsedate_to_datetime(record["date_created"])
    for name, keep in (
        ("DateSent", lambda a, b: a == b),
        ("DateSent<", lambda a, b: a <= b),
        ("DateSent>", lambda a, b: a >= b),
    ):
        value = _first(query, name)
        if value is None:
            continue
        try:
            day_only = len(value) == 10
            moment = datetime.strptime(value, "%Y-%m-%d" if day_only else "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise _bad(20001, "Invalid {name}: {value}", name=name, value=value) from None
        moment = moment.replace(tzinfo=UTC)
        if not (keep(created.date(), moment.date()) if day_only else keep(created, moment)):
            return False
    return True


def _int_param(query: Pairs, name: str, default: int, low: int, high: int) -> int:
    value = _first(query, name) or str(default)
    if not value.isdigit() or not low <= int(value) <= high:
        raise _bad(20001, "Invalid {name}: {value}", name=name, value=value)
    return int(value)


def _page(path: str, key: str, records: list[dict[str, Any]], query: Pairs) -> dict[str, Any]:
    """One page in Twilio's 2010-04-01 list shape, of records already filtered, newest first."""
    size, page = _int_param(query, "PageSize", 50, 1, 1000), _int_param(query, "Page", 0, 0, 10**9)
    token, start = _first(query, "PageToken") or "", page * size
    # The token names the last record already listed, so records created meanwhile don't
    # shift the pages of a stream under way.
    sids = [record["sid"] for record in records]
    if token.startswith("PA") and token[2:] in sids:
        start = sids.index(token[2:]) + 1
    chunk = records[start : start + size]
    filters = [(k, v) for k, v in query if k not in ("Page", "PageSize", "PageToken")]

    def uri(number: int, page_token: str = "") -> str:
        token_pair = [("PageToken", page_token)] if page_token else []
        return f"{path}?{urlencode([*filters, ('PageSize', size), ('Page', number), *token_pair])}"

    more = bool(chunk) and start + len(chunk) < len(records)
    return {
        key: [_public(record) for record in chunk],
        "page": page,
        "page_size": size,
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, "PA" + chunk[-1]["sid"]) if more else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "uri": uri(page, token),
        "start": start,
        "end": start + max(len(chunk) - 1, 0),
    }


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    try:
        username, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:  # bad base64 or UTF-8
        return None
    return (username, password) if scheme.lower() == "basic" and colon else None
