"""The local Twilio's status callbacks: signed as Twilio signs them, and as unreliable.

A message created with a StatusCallback is called back `sent`, then `delivered`; a call with
one, `completed` (or each of its StatusCallbackEvent). Each callback is a form POST signed with
the account's auth token (X-Twilio-Signature, twilio's own RequestValidator), sent `delay`
seconds after the create from a thread of its own, so it can land before the create's answer.
With a `signing_key` (a SharedKey of Twilio's Webhooks API, as if a Webhook Rule matched every
URL) they are signed with its secret and algorithm instead, and carry
X-Twilio-Webhooks-Signature-Settings naming them.

Bad days, by name (`faults`, from tests or `/_fake/config` as "callback_faults"):

- "twice": every callback is sent two times;
- "out-of-order": a resource's callbacks are sent last first;
- "late": they come `late_seconds` after the create instead of `delay`;
- "early": the first one is sent at once, while the create's answer is still being written.

The transport is HTTP by default, to addresses on this machine only (the local stack's app):
a callback for any other host is kept in `held`, never sent. Tests hand in a callable to collect
callbacks and deliver them to the app themselves.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
)

from devkit.events import SharedKey

KNOWN = ("twice", "out-of-order", "late", "early")
NOT_ANSWERED = ("busy", "no-answer", "failed")


class Callback(NamedTuple):
    """One status callback as Twilio sends it."""

    url: str
    params: dict[str, str]
    signature: str
    # X-Twilio-Webhooks-Signature-Settings, when signed with a SharedKey.
    settings: str | None = None


Transport = Callable[[Callback], None]


def on_this_machine(url: str) -> bool:
    """Whether url names this machine (loopback): the only place the local Twilio calls."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def http_post(callback: Callback) -> None:
    """POST the callback as Twilio does; failures are the receiver's problem, as with Twilio."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": callback.signature,
        "User-Agent": "TwilioProxy/1.1",
    }
    if callback.settings is not None:
        headers[SIGNATURE_SETTINGS_HEADER] = callback.settings
    request = urllib.request.Request(
        callback.url, data=urlencode(callback.params).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15):  # Twilio's own limit
            pass
    except (urllib.error.URLError, OSError):
        pass


class StatusCallbacks:
    """Schedules and sends the callbacks of created messages and calls."""

    def __init__(self, token_for: Callable[[str], str | None]) -> None:
        self._token_for = token_for
        self.transport: Transport = self._local_only
        self.held: list[Callback] = []
        self.configure()

    def _local_only(self, callback: Callback) -> None:
        if on_this_machine(callback.url):
            http_post(callback)
        else:
            self.held.append(callback)

    def configure(
        self,
        *,
        delay: float = 0.2,
        faults: tuple[str, ...] = (),
        late_seconds: float = 3.0,
        signing_key: SharedKey | None = None,
    ) -> None:
        """Set when callbacks go out, how they misbehave and what signs them (the auth token
        unless signing_key).

        Raises:
            ValueError: an unknown fault, a negative time, or a signing key Twilio would not
                take (no id or secret, an algorithm other than HMAC_SHA1 or HMAC_SHA256).
        """
        unknown = set(faults) - set(KNOWN)
        if unknown or delay < 0 or late_seconds < 0:
            raise ValueError(f"unknown callback faults {sorted(unknown)} or a negative time")
        if signing_key is not None and (
            not signing_key.key_id
            or not signing_key.secret
            or signing_key.algorithm not in (HMAC_SHA1, HMAC_SHA256)
        ):
            raise ValueError("signing_key takes a key, a secret and HMAC_SHA1 or HMAC_SHA256")
        self.delay, self.faults, self.late_seconds = delay, tuple(faults), late_seconds
        self.signing_key = signing_key

    def settings(self) -> dict[str, Any]:
        """The configuration as JSON-ready values (a signing key's id, never its secret)."""
        key = self.signing_key
        return {
            "callback_delay": self.delay,
            "callback_faults": list(self.faults),
            "callback_late_seconds": self.late_seconds,
            "signing_key": key and {"key": key.key_id, "algorithm": key.algorithm},
        }

    def message_created(self, record: dict[str, Any]) -> None:
        """A message was created: call back `sent` and `delivered` when it asked for them."""
        common = {
            "AccountSid": record["account_sid"],
            "MessageSid": record["sid"],
            "SmsSid": record["sid"],
            "From": record.get("from") or "",
            "To": record["to"],
            "ApiVersion": "2010-04-01",
        }
        steps = [{**common, "MessageStatus": s, "SmsStatus": s} for s in ("sent", "delivered")]
        self._schedule(record, steps)

    def call_created(self, record: dict[str, Any], outcome: str = "completed") -> None:
        """A call was created: call back each StatusCallbackEvent asked for (`completed` alone
        by default), answered as `in-progress`; a call that was not answered (outcome busy,
        no-answer or failed) ends with that status instead, after `initiated`/`ringing`."""
        events = record.get("status_callback_event") or ["completed"]
        if outcome != "completed":
            events = [e for e in events if e in ("initiated", "ringing")] + [outcome]
        names = {"answered": "in-progress"}
        common = {
            "AccountSid": record["account_sid"],
            "CallSid": record["sid"],
            "From": record.get("from") or "",
            "To": record["to"],
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
        }
        steps = [{**common, "CallStatus": names.get(e, e)} for e in events]
        if steps and steps[-1]["CallStatus"] in ("completed", *NOT_ANSWERED):
            steps[-1]["CallDuration"] = "1" if steps[-1]["CallStatus"] == "completed" else "0"
        self._schedule(record, steps)

    def _schedule(self, record: dict[str, Any], steps: list[dict[str, str]]) -> None:
        url = record.get("status_callback")
        token = self._token_for(record["account_sid"])
        if not url or not token or not steps:
            return
        key = self.signing_key
        if key is not None:
            header = key.settings_header()
            callbacks = [Callback(url, p, key.sign(url, p), header) for p in steps]
        else:
            validator = RequestValidator(token)
            callbacks = [Callback(url, p, validator.compute_signature(url, p)) for p in steps]
        if "out-of-order" in self.faults:
            callbacks.reverse()
        if "twice" in self.faults:
            callbacks = [c for c in callbacks for _ in range(2)]
        wait = self.late_seconds if "late" in self.faults else self.delay
        if "early" in self.faults:
            self._send_later([callbacks.pop(0)], 0.0)
        self._send_later(callbacks, wait)

    def _send_later(self, callbacks: list[Callback], wait: float) -> None:
        if not callbacks:
            return

        def send() -> None:
            for callback in callbacks:
                self.transport(callback)

        timer = threading.Timer(wait, send)
        timer.daemon = True
        timer.start()
