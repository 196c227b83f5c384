"""The local Twilio's account resources: IncomingPhoneNumbers, OutgoingCallerIds and Accounts.

Enough of Twilio's REST shapes for the real `twilio` client to list a number, read it and point
its voice, messaging, fallback and status callback URLs somewhere (`numbers configure`), and for
the phone simulator to find what a number's voice URL is.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

_NUMBER = re.compile(r"^/2010-04-01/Accounts/([^/]+)/IncomingPhoneNumbers(?:/([^/]+))?\.json$")
_CALLER_IDS = re.compile(r"^/2010-04-01/Accounts/([^/]+)/OutgoingCallerIds\.json$")
_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/([^/.]+)\.json$")
# The fields of a number that can be set, as Twilio's form names them -> the JSON field.
SETTABLE = {
    "FriendlyName": "friendly_name",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
}
_METHODS = ("GET", "POST")


class NumbersError(Exception):
    """An answer in Twilio's error shape: status, code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Numbers:
    """The numbers and verified caller IDs of each account, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: list[dict[str, Any]] = []
        self._caller_ids: list[dict[str, Any]] = []
        # Twilio on a bad day for these lists too: a status (500, 503, 429) every list answers.
        self.fail_lists: int | None = None

    def verify(self, account: str, number: str) -> dict[str, Any]:
        """Verify number as a caller ID of account (a phone of the owner's, not a Twilio one)."""
        record = {
            "sid": "PN" + secrets.token_hex(16),
            "account_sid": account,
            "phone_number": number,
            "friendly_name": number,
        }
        with self._lock:
            self._caller_ids.append(record)
        return dict(record)

    def add(self, account: str, number: str, **urls: str) -> dict[str, Any]:
        """Give account a phone number (its URLs as JSON field names: voice_url=...)."""
        sid = "PN" + secrets.token_hex(16)
        record = {
            "sid": sid,
            "account_sid": account,
            "phone_number": number,
            "friendly_name": number,
            "voice_url": None,
            "voice_method": "POST",
            "voice_fallback_url": None,
            "voice_fallback_method": "POST",
            "status_callback": None,
            "status_callback_method": "POST",
            "sms_url": None,
            "sms_method": "POST",
            "sms_fallback_url": None,
            "sms_fallback_method": "POST",
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
        } | urls
        with self._lock:
            self._numbers.append(record)
        return dict(record)

    def find(self, number: str) -> dict[str, Any] | None:
        """A number's record by its E.164 form, in any account."""
        with self._lock:
            found = next((n for n in self._numbers if n["phone_number"] == number), None)
            return dict(found) if found else None

    def handles(self, path: str) -> bool:
        """Whether path is one of these resources."""
        return any(p.match(path) for p in (_NUMBER, _CALLER_IDS, _ACCOUNT))

    def answer(
        self, method: str, path: str, query: list[tuple[str, str]], form: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any]]:
        """Twilio's answer to a request for one of these resources (authenticated already).

        Raises:
            NumbersError: an unknown number, a method not allowed, or a bad field.
        """
        if match := _ACCOUNT.match(path):
            return 200, {"sid": match[1], "friendly_name": "Local account", "status": "active",
                         "type": "Full", "uri": path}  # fmt: skip
        listing = method == "GET" and (_CALLER_IDS.match(path) or path.endswith("Numbers.json"))
        if listing and self.fail_lists is not None:
            busy = self.fail_lists < 500
            raise NumbersError(self.fail_lists, 20429 if busy else 20500,
                               "Too many requests" if busy else "Service unavailable")  # fmt: skip
        if match := _CALLER_IDS.match(path):
            # Verified caller IDs only: the account's own Twilio numbers are not listed here.
            with self._lock:
                ids = [dict(c) for c in self._caller_ids if c["account_sid"] == match[1]]
            return 200, _page(path, "outgoing_caller_ids", ids)
        match = _NUMBER.match(path)
        if match is None:
            raise NumbersError(404, 20404, f"The requested resource {path} was not found")
        account, sid = match.groups()
        with self._lock:
            owned = [n for n in self._numbers if n["account_sid"] == account]
            if sid is None:
                if method != "GET":
                    raise NumbersError(405, 20004, "Method not allowed")
                wanted = dict(query).get("PhoneNumber")
                listed = [dict(n) for n in owned if wanted in (None, n["phone_number"])]
                return 200, _page(path, "incoming_phone_numbers", listed)
            record = next((n for n in owned if n["sid"] == sid), None)
            if record is None:
                raise NumbersError(404, 20404, f"The requested resource {path} was not found")
            if method == "POST":
                _update(record, form)
            elif method != "GET":
                raise NumbersError(405, 20004, "Method not allowed")
            return 200, dict(record)


def _update(record: dict[str, Any], form: list[tuple[str, str]]) -> None:
    changes = {}
    for name, value in form:
        field = SETTABLE.get(name)
        if field is None:
            continue
        if field.endswith("_method") and value.upper() not in _METHODS:
            raise NumbersError(400, 21603, f"{name} must be GET or POST")
        if field.endswith(("_url", "callback")) and value and not value.startswith("http"):
            raise NumbersError(400, 21502, f"{name} is not a valid URL: {value}")
        changes[field] = value.upper() if field.endswith("_method") else (value or None)
    record.update(changes)


def _page(path: str, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: items,
        "uri": path,
        "first_page_uri": path + "?PageSize=50&Page=0",
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": max(0, len(items) - 1),
    }
