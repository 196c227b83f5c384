"""Twilio REST API: send messages and place calls, with a timeout and errors in our own terms."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.telephony.text_match import same_text

if TYPE_CHECKING:
    from chalicelib.aws.parameters import Parameters
    from chalicelib.telephony.twilio_api import Account

logger = logging.getLogger(__name__)

# Well under Twilio's 15 s webhook limit, API Gateway's 29 s and the Lambda timeout.
REQUEST_TIMEOUT = 5.0
# Twilio answers these when the app's own credentials or account are wrong: the operator's
# problem, not the caller's request.
_CREDENTIAL_STATUSES = frozenset({401, 403, 404})


# What a failed create means for the thing it would have created.
REFUSED = "refused"  # Twilio answered no: nothing was created, and asking again will not help
NOT_ACCEPTED = "not_accepted"  # nothing was created (throttled, unavailable, our credentials)
AMBIGUOUS = "ambiguous"  # no answer, or a failure after sending: it may exist at Twilio


class TwilioError(Exception):
    """A Twilio REST call did not succeed."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    @property
    def outcome(self) -> str:
        """REFUSED, NOT_ACCEPTED or AMBIGUOUS: whether a create may have taken effect.

        429 and 503 say "not now"; a 401/403/404 refuses this app's credentials before anything
        is created. A timeout, a dropped connection and any other 5xx may come after Twilio
        created the message or call, so they are ambiguous.
        """
        if isinstance(self, TwilioRequestError):
            return NOT_ACCEPTED if self.status == 429 else REFUSED
        if self.status == 503 or self.status in _CREDENTIAL_STATUSES:
            return NOT_ACCEPTED
        return AMBIGUOUS

    @property
    def credentials_refused(self) -> bool:
        """Twilio refused this app's own credentials (the operator's problem)."""
        return isinstance(self, TwilioUnavailableError) and self.status in _CREDENTIAL_STATUSES


class TwilioRequestError(TwilioError):
    """Twilio refused the request for its content (a 4xx such as 21211 or 21610)."""


class TwilioUnavailableError(TwilioError):
    """Twilio failed (5xx), could not be reached, or refused this app's credentials."""


class TwilioTimeoutError(TwilioError):
    """Twilio did not answer in time; the request may or may not have taken effect."""


class Credentials(NamedTuple):
    """REST credentials: an API key when configured, else the account's auth token."""

    account_sid: str
    username: str
    password: str

    @classmethod
    def from_parameters(cls, parameters: Parameters) -> Credentials:
        """Build credentials from twilio/* parameters.

        Raises:
            MissingParameterError: the account SID or a secret is not set.
        """
        account_sid = parameters.require("twilio/account_sid")
        key_sid = parameters.optional("twilio/api_key_sid")
        if key_sid:
            return cls(account_sid, key_sid, parameters.require("twilio/api_key_secret"))
        return cls(account_sid, account_sid, parameters.require("twilio/auth_token"))


class TwilioRest:
    """Domain-named calls on Twilio's REST API.

    renew, when given, answers the account on credentials read afresh (or None when they have
    not changed): a call Twilio refuses for this app's credentials is made once more on it.
    """

    def __init__(self, api: Account, renew: Callable[[], Account | None] | None = None) -> None:
        self._api = api
        self._renew = renew

    def send_message(
        self,
        *,
        to: str,
        body: str | None,
        sender: str,
        media_urls: list[str] | None = None,
        status_callback: str | None = None,
    ) -> dict[str, Any]:
        """Create a message; sender is a number (From) or a Messaging Service SID (MG...).

        Raises:
            TwilioError: one of its subclasses, by what went wrong.
        """
        data: dict[str, Any] = {"To": to}
        data["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
        if body:
            data["Body"] = body
        if media_urls:
            data["MediaUrl"] = media_urls
        if status_callback:
            data["StatusCallback"] = status_callback
        message = self._call(lambda api: api.create("Messages", data))
        return {
            "sid": message.get("sid"),
            "status": message.get("status"),
            "to": message.get("to"),
            "from": message.get("from") or message.get("messaging_service_sid"),
        }

    def place_call(
        self,
        *,
        to: str,
        sender: str,
        url: str | None = None,
        twiml: str | None = None,
        status_callback: str | None = None,
    ) -> dict[str, Any]:
        """Place a call that runs url or twiml when answered.

        Raises:
            TwilioError: one of its subclasses, by what went wrong.
        """
        data: dict[str, Any] = {"To": to, "From": sender}
        if twiml:
            data["Twiml"] = twiml
        else:
            data["Url"] = url
        if status_callback:
            data["StatusCallback"] = status_callback
            data["StatusCallbackEvent"] = ["initiated", "ringing", "answered", "completed"]
        call = self._call(lambda api: api.create("Calls", data))
        return {key: call.get(key) for key in ("sid", "status", "to", "from")}

    def find_message(
        self,
        *,
        to: str,
        sender: str,
        body: str | None,
        since: float,
        taken: Callable[[str], bool] | None = None,
    ) -> dict[str, Any] | None:
        """Find a message this account created to `to` from sender since an instant.

        Used before sending again after an ambiguous failure (timeout, 5xx): Twilio may have
        accepted the first attempt. Reads the newest 100 and stops at those older than since.
        The body is matched as Twilio may have rewritten it (same_text); SIDs for which taken()
        is true already belong to another of our records and are passed over.

        Raises:
            TwilioError: one of its subclasses, when the list itself fails.
        """
        params = {"To": to} if sender.startswith("MG") else {"To": to, "From": sender}
        skew = 120  # clocks differ; the sender and the text still have to match
        listed = self._call(lambda api: api.list("Messages", params, limit=100, page_size=50))
        for message in listed:
            created = _created(message)
            if created is not None and created < since - skew:
                return None
            same_sender = (
                message.get("messaging_service_sid" if sender.startswith("MG") else "from")
                == sender
            )
            if not same_sender or not same_text(body or "", message.get("body") or ""):
                continue
            if taken is not None and taken(message.get("sid")):
                continue
            return {
                "sid": message.get("sid"),
                "status": message.get("status"),
                "error_code": _integer(message.get("error_code")),
                "error_message": message.get("error_message"),
            }
        return None

    def find_call(
        self,
        *,
        to: str,
        sender: str,
        since: float,
        taken: Callable[[str], bool] | None = None,
    ) -> dict[str, Any] | None:
        """The newest call this account placed to `to` from sender since an instant, or None.

        Used to settle a call whose create got no clear answer (timeout, 5xx). SIDs for which
        taken() is true already belong to another of our records and are passed over.

        Raises:
            TwilioError: one of its subclasses, when the list itself fails.
        """
        skew = 120  # clocks differ; to and from still have to match
        params = {"To": to, "From": sender}
        listed = self._call(lambda api: api.list("Calls", params, limit=20))
        for call in listed:
            created = _created(call)
            if created is not None and created < since - skew:
                return None
            if taken is None or not taken(call.get("sid")):
                return {"sid": call.get("sid"), "status": call.get("status")}
        return None

    def fetch_price(self, sid: str) -> tuple[str | None, str | None]:
        """A message's (SM/MM) or call's (CA) price and price_unit as Twilio states them (a
        charge is negative, "-0.00790"); the price is None until Twilio has priced it.

        Raises:
            TwilioError: one of its subclasses, when the fetch fails.
        """
        resource = "Calls" if sid.startswith("CA") else "Messages"
        found = self._call(lambda api: api.fetch(resource, sid))
        return found.get("price"), found.get("price_unit")

    def owned_senders(self) -> tuple[frozenset[str], frozenset[str]]:
        """The account's incoming numbers and its verified caller IDs (E.164), every page.

        Raises:
            TwilioError: one of its subclasses, when a list fails.
        """
        numbers = self._call(lambda api: api.list("IncomingPhoneNumbers", {}, page_size=1000))
        caller_ids = self._call(lambda api: api.list("OutgoingCallerIds", {}, page_size=1000))
        return (
            frozenset(n["phone_number"] for n in numbers if n.get("phone_number")),
            frozenset(c["phone_number"] for c in caller_ids if c.get("phone_number")),
        )

    def _call(self, action: Callable[[Account], Any]) -> Any:
        """action(account), once more on renewed credentials if Twilio refuses ours: nothing was
        created then, so asking again is safe (Twilio refuses rotated ones at once, while this
        container and the extension may hold them for minutes)."""
        try:
            return _request(action, self._api)
        except TwilioError as exc:
            if not exc.credentials_refused:
                raise
            api = self._renew() if self._renew is not None else None
            if api is None:
                logger.error(
                    "Twilio refused this app's credentials", extra={"twilio_code": exc.code}
                )
                raise
        logger.info("Twilio credentials changed in the parameter store; using the new ones")
        self._api = api
        try:
            return _request(action, api)
        except TwilioError as exc:
            if exc.credentials_refused:
                logger.error(
                    "Twilio refused this app's credentials", extra={"twilio_code": exc.code}
                )
            raise


def _request(action: Callable[[Account], Any], api: Account) -> Any:
    """action(api), its failures as TwilioError."""
    # Loaded with twilio.rest by now (see get_twilio); at module scope they would cost every
    # importer of this module.
    from requests.exceptions import ConnectionError, RequestException, Timeout
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        return action(api)
    except TwilioRestException as exc:
        raise _classify(int(exc.status or 0), exc.code, exc.msg) from exc
    except TwilioException as exc:
        # A list page Twilio refused comes as a bare TwilioException holding the response.
        raise _page_error(exc) from exc
    except Timeout as exc:
        raise TwilioTimeoutError("Twilio did not answer in time") from exc
    except ConnectionError as exc:
        raise TwilioUnavailableError("Twilio could not be reached") from exc
    except RequestException as exc:
        raise TwilioUnavailableError(f"Twilio request failed: {type(exc).__name__}") from exc


def _page_error(exc: Any) -> TwilioError:
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return TwilioUnavailableError(f"Twilio request failed: {type(exc).__name__}")
    try:
        body = json.loads(response.text)
    except (ValueError, TypeError):
        body = {}
    body = body if isinstance(body, dict) else {}
    return _classify(status, body.get("code"), body.get("message"))


def _classify(status: int, code: int | None, message: str | None) -> TwilioError:
    message = message or "Twilio refused the request"
    if status >= 500 or status in _CREDENTIAL_STATUSES or status < 400:
        return TwilioUnavailableError(message, status=status, code=code)
    return TwilioRequestError(message, status=status, code=code)


_client_cache: dict[tuple[str, str, str, str | None], Account] = {}


def get_twilio(
    credentials: Credentials,
    *,
    base_url: str | None = None,
    renew: Callable[[Credentials], Credentials | None] | None = None,
) -> TwilioRest:
    """Return a TwilioRest on this container's client for these credentials (kept warm).

    renew(refused) answers the credentials read afresh, or None when they are the same.
    """

    def renewed() -> Account | None:
        fresh = renew(credentials) if renew is not None else None
        return _client_for(fresh, base_url) if fresh is not None else None

    return TwilioRest(_client_for(credentials, base_url), renewed if renew is not None else None)


def preload() -> None:
    """Import what building a client imports, without building one (no credentials at INIT)."""
    from twilio.http.http_client import TwilioHttpClient  # noqa: F401
    from twilio.rest import Client  # noqa: F401

    from chalicelib.telephony import twilio_api  # noqa: F401


def _client_for(credentials: Credentials, base_url: str | None) -> Account:
    key = (credentials.account_sid, credentials.username, credentials.password, base_url)
    api = _client_cache.get(key)
    if api is None:
        # Imported here unless INIT preloaded them (chalicelib.runtime.warmup): ~50 ms of CPU.
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        from chalicelib.telephony.twilio_api import Account

        client = Client(
            credentials.username,
            credentials.password,
            credentials.account_sid,
            http_client=TwilioHttpClient(timeout=REQUEST_TIMEOUT),
        )
        if base_url:
            # TWILIO_REGION/TWILIO_EDGE would rewrite the fake's host into a Twilio hostname.
            client.region = None
            client.edge = None
        api = Account(client, base_url)
        # One entry: a rotated secret replaces the old client instead of piling up.
        _client_cache.clear()
        _client_cache[key] = api
    return api


def _created(record: dict[str, Any]) -> float | None:
    """A record's date_created (RFC 2822, as the 2010 API writes it) as a timestamp."""
    from twilio.base.deserialize import rfc2822_datetime

    created = rfc2822_datetime(record.get("date_created") or "")
    return created.timestamp() if created is not None else None


def _integer(value: Any) -> Any:
    """An integer field as the generated classes read it (twilio's deserialize.integer)."""
    from twilio.base.deserialize import integer

    return integer(value)
