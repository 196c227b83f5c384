"""A local fake of Twilio's REST API for tests and local runs: its state and its API.

The HTTP server is in twilio_http, the /_fake/* endpoints in twilio_control, the resources'
shapes in twilio_resources, bad days in twilio_faults, status callbacks in twilio_callbacks,
phone numbers and the account in twilio_numbers.
"""

from __future__ import annotations

import argparse
import copy
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from devkit.phone import OverHttp, Phone, Reply
from devkit.twilio_callbacks import StatusCallbacks, on_this_machine
from devkit.twilio_faults import THEN_CREATE, Faults, Pending
from devkit.twilio_http import Hangup, Late, Server
from devkit.twilio_numbers import Numbers, NumbersError
from devkit.twilio_resources import (  # noqa: F401 (RecordedRequest, rewrite_body: public)
    _PRIVATE,
    _ROUTE,
    API_VERSION,
    ApiError,
    Pairs,
    RecordedRequest,
    _all,
    _basic_auth,
    _first,
    _new_call,
    _new_message,
    _page,
    _public,
    _sent_on_dates,
    rewrite_body,
)

_INLINE = "http://127.0.0.1/inline-twiml"
PRICE_AFTER = 5.0  # seconds after the final state, on the fake's clock
PRICES = ("-0.00790", "-0.01400")  # a message segment's, a completed call's


class _Inline:
    """A transport that answers the call's first request with its inline TwiML."""

    def __init__(self, twiml: str, then: Any) -> None:
        self.twiml, self.then = twiml, then

    def request(self, method: str, url: str, params: dict[str, str]) -> Any:
        if url.split("?", 1)[0] == _INLINE:
            return Reply(200, {"content-type": "text/xml"}, self.twiml)
        return self.then.request(method, url, params)


class FakeTwilio:
    """Twilio's Messages and Calls REST resources, in memory, over real HTTP."""

    def __init__(
        self,
        *,
        accounts: dict[str, str],
        api_keys: dict[str, tuple[str, str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self._accounts, self._api_keys = dict(accounts), dict(api_keys or {})
        self._address, self.latency, self.url = (host, port), latency, ""
        self._lock = threading.Lock()
        self.faults = Faults()
        self._pending = Pending()  # creates a "...-then-create" fault put off
        self.callbacks = StatusCallbacks(lambda account: self._accounts.get(account))
        # Told of every message and call created (make run prints a line for each).
        self.on_create: Callable[[str, dict[str, Any]], None] | None = None
        # What a called number does (busy, no-answer, failed); answered when not listed.
        self.call_outcomes: dict[str, str] = {}
        # Phone numbers persist across reset(), as a Twilio account's do.
        self.numbers = Numbers()
        # Store bodies as Twilio's Smart Encoding and Link Shortening may (rewrite_body).
        self.rewrite_bodies = False
        # Seconds after which a created message is sent and delivered (priced) and a call
        # completed; None leaves them as created (the tests' default: nothing moves by itself).
        self.complete_after: float | None = None
        # Pricing, as Twilio does it: after the final state (price null until then; a
        # charge is negative); a message's price is per segment. reset() restores these.
        self.price_after, self.message_price, self.call_price = PRICE_AFTER, *PRICES
        # Where dates come from: tests whose app runs on a moved clock give the fake the same one,
        # or a lookup "since the first attempt" would compare two different times.
        self.clock: Callable[[], float] = time.time
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("FakeTwilio is already running")
        # Listening once constructed: connections wait in the backlog until serve_forever runs.
        self._server = Server(self._address, self)
        self.url = "http://{}:{}".format(*self._server.server_address[:2])
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-twilio", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeTwilio:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget messages, calls, the request log, faults, rewriting and callback settings
        (latency and the callback transport stay); creates put off never happen."""
        self._pending.cancel()  # first: none may land in the lists cleared below
        self.rewrite_bodies = False
        self.complete_after = None
        self.price_after, self.message_price, self.call_price = PRICE_AFTER, *PRICES
        self.call_outcomes = {}
        self.callbacks.configure()
        self.callbacks.held.clear()
        with self._lock:
            self._messages: list[dict[str, Any]] = []
            self._calls: list[dict[str, Any]] = []
            self._requests: list[RecordedRequest] = []
        self.set_faults()

    def set_auth_token(self, account: str, token: str) -> str | None:
        """Give an account a new auth token, as rotating it in Twilio's console does (the old
        one stops working at once); returns the old one."""
        with self._lock:
            old = self._accounts.get(account)
            self._accounts[account] = token
        return old

    def set_faults(
        self,
        *,
        rate: float = 0.0,
        statuses: tuple[int, ...] = (429, 500),
        outcomes: tuple[str, ...] | None = None,
        seed: int | None = None,
        late_seconds: float = 7.0,
        create_after: float = 3.0,
    ) -> None:
        """Give a share `rate` of creates a bad outcome (devkit/twilio_faults.py): one of
        `outcomes`, or else of `statuses` (errors answered before anything is created).

        Raises:
            ValueError: a rate outside [0, 1], an outcome the fake does not know, or negative
                seconds.
        """
        chosen = outcomes if outcomes is not None else tuple(str(s) for s in statuses)
        self.faults.configure(
            rate=rate,
            outcomes=chosen,
            seed=seed,
            late_seconds=late_seconds,
            create_after=create_after,
        )

    def script_faults(self, *outcomes: str) -> None:
        """The next creates get these outcomes in order ("ok" for a plain success)."""
        self.faults.script(outcomes)

    @property
    def pending_creates(self) -> int:
        """How many creates a "...-then-create" fault has put off and not yet made."""
        return len(self._pending)

    def run_pending_creates(self) -> int:
        """Make every create put off now, oldest first (instead of create_after seconds after
        its request); how many were made."""
        return self._pending.run_all()

    # Copies, so callers can read while the server keeps appending.
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[dict[str, Any]]:
        self._settle_prices()
        with self._lock:
            return copy.deepcopy(self._messages)

    @property
    def calls(self) -> list[dict[str, Any]]:
        self._settle_prices()
        with self._lock:
            return copy.deepcopy(self._calls)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _complete_later(self, sid: str, wait: float) -> None:
        def complete() -> None:
            now = self._now()
            with self._lock:
                for record in (*self._messages, *self._calls):
                    if record["sid"] != sid:
                        continue
                    if sid.startswith("SM"):
                        segments = int(record.get("num_segments") or 1)
                        price = Decimal(self.message_price) * segments
                        record.update(status="delivered", date_sent=now)
                        self._price_later(record, f"{price:.5f}")
                    elif self.call_outcomes.get(record["to"], "completed") != "completed":
                        outcome = self.call_outcomes[record["to"]]
                        record.update(status=outcome, duration="0", price=None)  # not billed
                    else:
                        record.update(status="completed", duration="1")
                        self._price_later(record, f"{Decimal(self.call_price):.5f}")
                    record["date_updated"] = now
                    done = dict(record)
            if sid.startswith("CA"):
                self._run_call(done)

        timer = threading.Timer(wait, complete)
        timer.daemon = True
        timer.start()

    def _price_later(self, record: dict[str, Any], price: str) -> None:
        """Price a record (under the lock) price_after seconds from now, as Twilio fills its
        price in some time after the final state: a fetch before then says null."""
        record.update(price=None, _price=price, _price_due=self.clock() + self.price_after)

    def _settle_prices(self) -> None:
        now = self.clock()
        with self._lock:
            for record in (*self._messages, *self._calls):
                if record.get("_price_due") is not None and record["_price_due"] <= now:
                    record["price"] = record.pop("_price")
                    del record["_price_due"]

    def _run_call(self, record: dict[str, Any]) -> None:
        """The callee answers (unless call_outcomes says otherwise for its number): the call's
        Url runs through the phone engine (signed, over HTTP, to this machine only, like the
        callbacks), then its status callbacks go out."""
        outcome = self.call_outcomes.get(record["to"], "completed")
        if outcome != "completed":
            self.callbacks.call_created(record, outcome)
            return
        url = record.get("url") or ""
        token = self._accounts.get(record["account_sid"]) or ""
        transport: Any = OverHttp(token)
        if record.get("twiml"):
            # Inline TwiML is the call's first document; any URL in it is fetched as usual.
            transport, url = _Inline(record["twiml"], transport), _INLINE
        if url and on_this_machine(url):
            # Twilio's parameters for the call's URL: From is our number, To the callee.
            phone = Phone(transport, caller=record["from"] or "", number=record["to"])
            try:
                record["transcript"] = str(phone.call(url, method=record["method"]))
            except (OSError, RuntimeError) as exc:
                record["transcript"] = f"the call's TwiML failed: {type(exc).__name__}"
            with self._lock:
                for stored in self._calls:
                    if stored["sid"] == record["sid"]:
                        stored["transcript"] = record["transcript"]
        self.callbacks.call_created(record)

    def _now(self) -> str:
        """Now on this Twilio's clock, as Twilio writes dates."""
        return format_datetime(datetime.fromtimestamp(int(self.clock()), UTC))

    def _create(self, kind: str, record: dict[str, Any]) -> None:
        """Put a new record in its list, dated now, and tell whoever should know of it."""
        now = self._now()
        record.update(date_created=now, date_updated=now)
        if kind == "Messages" and self.rewrite_bodies and record.get("body"):
            record["body"] = rewrite_body(record["body"])
        with self._lock:
            (self._messages if kind == "Messages" else self._calls).append(record)
        if self.on_create is not None:
            self.on_create(kind, _public(record))
        # Twilio calls back about what it created, whatever became of the create's answer.
        if kind == "Messages":
            self.callbacks.message_created(record)
        elif self.complete_after is None:
            self.callbacks.call_created(record)
        if self.complete_after is not None:
            # A call's callbacks then follow the call itself, run in _complete_later.
            self._complete_later(record["sid"], self.complete_after)

    def _public_copy(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:  # _complete_later may be updating it
            return _public(record)

    def _authenticate(self, account: str, credentials: tuple[str, str] | None) -> None:
        username, password = credentials or ("", "")
        key_secret, key_account = self._api_keys.get(username, ("", ""))
        expected = self._accounts.get(account) if username == account else None
        if key_account == account and account in self._accounts:
            expected = key_secret
        if expected is None or not secrets.compare_digest(password.encode(), expected.encode()):
            raise ApiError(401, 20003, "Authenticate")

    def _api(
        self, method: str, path: str, query: Pairs, form: Pairs, credentials: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        if self.numbers.handles(path):
            self._authenticate(path.split("/")[3].removesuffix(".json"), credentials)
            try:
                return self.numbers.answer(method, path, query, form)
            except NumbersError as exc:
                raise ApiError(exc.status, exc.code, exc.message) from None
        match = _ROUTE.match(path)
        not_found = ApiError(404, 20404, f"The requested resource {path} was not found")
        if match is None:
            raise not_found
        account, kind, sid = match.groups()
        self._authenticate(account, credentials)
        store = self._messages if kind == "Messages" else self._calls
        if sid is None and method == "POST":
            fault = self.faults.next()
            if fault is not None and fault.isdigit():
                status = int(fault)
                headers = {"Retry-After": "1"} if status == 429 else None
                raise ApiError(status, 20000 + status, HTTPStatus(status).phrase, headers)
            # Validated now, SID given now, in Twilio's lists only once created.
            record = (_new_message if kind == "Messages" else _new_call)(account, form)
            if fault in THEN_CREATE:
                self._pending.later(self.faults.create_after, lambda: self._create(kind, record))
            else:
                self._create(kind, record)
            if fault in ("late", "late-then-create"):
                raise Late(201, lambda: self._public_copy(record))
            if fault == "504-then-create":
                raise ApiError(504, 20504, HTTPStatus(504).phrase)
            if fault == "500-after-create":
                raise ApiError(500, 20500, HTTPStatus(500).phrase)
            elif fault in ("drop-after-create", "drop-then-create"):
                raise Hangup
            return 201, _public(record)
        if method != "GET":
            raise ApiError(405, 20004, "Method not allowed")
        self._settle_prices()
        with self._lock:
            owned = [record for record in store if record["account_sid"] == account]
        if sid is not None:
            found = next((record for record in owned if record["sid"] == sid), None)
            if found is None:
                raise not_found
            return 200, _public(found)
        to, sender = _first(query, "To"), _first(query, "From")
        selected = [
            record
            for record in reversed(owned)
            if to in (None, record["to"])
            and sender in (None, record["from"])
            and (kind == "Calls" or _sent_on_dates(record, query))
        ]
        return 200, _page(path, kind.lower(), selected, query)


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Twilio until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m devkit.fake_twilio", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    # Environment defaults keep the token off the command line, where `ps` shows it.
    parser.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID"))
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"))
    parser.add_argument("--api-key", action="append", default=[], metavar="SK...:SECRET")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--complete-after",
        type=float,
        default=1.0,
        help="seconds until a message is delivered and a call completed (-1: never)",
    )
    args = parser.parse_args(argv)
    if not args.account_sid or not args.auth_token:
        parser.error("give --account-sid and --auth-token (or TWILIO_ACCOUNT_SID/_AUTH_TOKEN)")
    keys = {}
    for key_sid, colon, secret in (key.partition(":") for key in args.api_key):
        if not colon:
            parser.error("--api-key takes SK...:SECRET")
        keys[key_sid] = (secret, args.account_sid)
    fake = FakeTwilio(
        accounts={args.account_sid: args.auth_token},
        api_keys=keys,
        host=args.host,
        port=args.port,
        latency=args.latency,
    )
    fake.complete_after = None if args.complete_after < 0 else args.complete_after
    print(f"Fake Twilio on {fake.start()} for {args.account_sid}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
