"""A phone that plays Twilio's part in a call: fetches TwiML, signed, and follows it verb by verb.

It starts a call at a URL and then does what Twilio does with each answer: says and plays (into a
transcript), gathers scripted digits, dials with a scripted outcome per <Dial> (running the
callee's whisper ``url`` on its own leg), follows <Redirect> and 302s, records and later posts
the transcription callback, and stops at <Hangup/> or the end of the document. Requests are
signed as Twilio signs them, either in-process (an API Gateway event into the Chalice app) or
over HTTP (against ``chalice local`` or a deployment).

Where Twilio's behaviour is not documented the phone makes an assumption, and says so:
a 302 is followed with the same method and parameters; a callee leg the whisper hangs up
reports ``DialCallStatus=no-answer``; <Record> ends with the caller pressing ``#``.
"""

from __future__ import annotations

import itertools
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

from devkit import demo
from devkit.events import LambdaContext, SharedKey, twilio_event

MAX_REQUESTS = 60


class Reply(NamedTuple):
    """An HTTP answer: status, headers with lower-case names, body."""

    status: int
    headers: dict[str, str]
    body: str


class Request(NamedTuple):
    """One request the phone made."""

    leg: str
    method: str
    url: str
    params: dict[str, str]
    status: int


class Step(NamedTuple):
    """One thing that happened on a leg: a verb run, a redirect followed, an error."""

    leg: str
    verb: str
    text: str
    attrs: dict[str, str]


class Leg(NamedTuple):
    """The scripted outcome of one <Dial>.

    status: "completed" (answered), "no-answer", "busy" or "failed". digits: the keys the
    callee presses during the whisper, None for none (the <Gather> times out). answered_by:
    which of the dialled numbers picks up.
    """

    status: str = "completed"
    digits: str | None = None
    answered_by: int = 0


class Transport(Protocol):
    """Sends one signed request."""

    def request(self, method: str, url: str, params: dict[str, str]) -> Reply: ...


class InProcess:
    """Signed API Gateway events straight into the Chalice app (as Lambda would run it)."""

    def __init__(
        self,
        app: Any,
        auth_token: str,
        *,
        base_path: str = "",
        shared_key: SharedKey | None = None,
    ) -> None:
        self.app = app
        self.auth_token = auth_token
        self.base_path = base_path
        self.shared_key = shared_key  # signs instead of the auth token (Twilio's SharedKeys)
        self.routes = list(app.routes)

    def request(self, method: str, url: str, params: dict[str, str]) -> Reply:
        host = urlsplit(url).netloc
        base_path = "" if ".execute-api." in host else self.base_path
        event = twilio_event(
            url,
            params if method == "POST" else None,
            auth_token=self.auth_token,
            routes=self.routes,
            method=method,
            base_path=base_path,
            shared_key=self.shared_key,
        )
        response = self.app(event, LambdaContext())
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return Reply(response["statusCode"], headers, response.get("body") or "")


class OverHttp:
    """Signed HTTP requests, for ``chalice local`` or a deployed stage."""

    def __init__(
        self, auth_token: str, *, timeout: float = 20, shared_key: SharedKey | None = None
    ) -> None:
        self.auth_token = auth_token
        self.timeout = timeout
        self.shared_key = shared_key  # signs instead of the auth token (Twilio's SharedKeys)

    def request(self, method: str, url: str, params: dict[str, str]) -> Reply:
        import requests
        from twilio.request_validator import RequestValidator

        signed = params if method == "POST" else {}
        headers = {}
        if self.shared_key is not None:
            headers["X-Twilio-Signature"] = self.shared_key.sign(url, signed)
            headers["X-Twilio-Webhooks-Signature-Settings"] = self.shared_key.settings_header()
        else:
            validator = RequestValidator(self.auth_token)
            headers["X-Twilio-Signature"] = validator.compute_signature(url, signed)
        if method == "POST":
            response = requests.post(
                url, data=params, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        else:
            response = requests.get(
                url, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Reply(response.status_code, headers, response.text)


class Transcript:
    """What happened during a call: steps per leg, and every request made."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.requests: list[Request] = []

    def verbs(self, leg: str | None = "caller") -> list[tuple[str, str]]:
        """(verb, text) of a leg's steps (all legs with None)."""
        return [(s.verb, s.text) for s in self.steps if leg is None or s.leg == leg]

    def __str__(self) -> str:
        return "\n".join(line(s) for s in self.steps)


def line(step: Step) -> str:
    """One step of a transcript, as printed."""
    return f"{step.leg:>18} {step.verb:<13} {step.text}".rstrip()


class _Next(NamedTuple):
    url: str
    method: str
    extra: dict[str, str]


class Phone:
    """A caller dialling this app's number, with everything they and the callees do scripted.

    digits: one entry per <Gather> the caller meets; None lets it time out; once the script runs
    out the caller hangs up at the next <Gather>. legs: one Leg per <Dial>.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        caller: str = "+15105551212",
        number: str = demo.NUMBER,
        digits: Iterable[str | None] = (),
        legs: Iterable[Leg] = (),
        transcription: str | None = "Hello, please call me back.",
        redirect_method: str = "POST",
        max_requests: int = MAX_REQUESTS,
        outcomes: Mapping[str, str] | None = None,
        echo: Callable[[Step], None] | None = None,
        ask: Callable[[], str | None] | None = None,
        application_sid: str | None = None,
    ) -> None:
        self.transport = transport
        # Set for a browser user's call (caller "client:NAME"): Twilio's request to the TwiML
        # App's Voice URL carries its SID, and To is what the browser asked to dial.
        self.application_sid = application_sid
        self.caller = caller
        self.number = number
        self.digits = list(digits)
        self.legs = list(legs)
        self.transcription = transcription
        self.redirect_method = redirect_method
        self.max_requests = max_requests
        # A dialled number's outcome, whichever <Dial> reaches it (else the Leg's, in order).
        self.outcomes = dict(outcomes or {})
        # Told of each step as it happens (the CLI prints the transcript as the call goes).
        self.echo = echo
        # Asked for the caller's keys at a <Gather> once the scripted digits run out (a person
        # at the terminal); None from it lets the <Gather> time out.
        self.ask = ask
        self.transcript = Transcript()
        # Unique across phones and runs, as Twilio's SIDs are: the app keys events on them.
        self._sids = itertools.count(int.from_bytes(os.urandom(12), "big") << 16)
        self._callbacks: list[tuple[str, dict[str, str]]] = []

    def call(self, url: str, *, method: str = "POST") -> Transcript:
        """Place the call at url, run it to its end, then post any transcription callbacks."""
        params = self._call_params(self.caller, self.number, "inbound")
        if self.application_sid is not None:
            params.update({"ApplicationSid": self.application_sid, "Called": ""})
        self._run("caller", _Next(url, method, {}), params, self.digits)
        for callback_url, extra in self._callbacks:
            reply = self._request("caller", "POST", callback_url, {**params, **extra})
            self._step("caller", "Transcription", f"HTTP {reply.status}", {"url": callback_url})
        self._callbacks.clear()
        return self.transcript

    def _call_params(self, caller: str, called: str, direction: str) -> dict[str, str]:
        return {
            "AccountSid": demo.ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": f"CA{next(self._sids):032x}",
            "CallStatus": "in-progress",
            "Direction": direction,
            "From": caller,
            "Caller": caller,
            "To": called,
            "Called": called,
            "FromCity": "",
            "FromZip": "",
        }

    def _step(self, leg: str, verb: str, text: str = "", attrs: Mapping[str, str] = ()) -> None:
        step = Step(leg, verb, text, dict(attrs))
        self.transcript.steps.append(step)
        if self.echo is not None:
            self.echo(step)

    def _request(self, leg: str, method: str, url: str, params: dict[str, str]) -> Reply:
        if len(self.transcript.requests) >= self.max_requests:
            raise RuntimeError(f"the call did not end within {self.max_requests} requests")
        target = url
        if method == "GET":
            # Twilio appends its parameters to the query string of a GET.
            target = url + ("&" if "?" in url else "?") + urlencode(params)
        reply = self.transport.request(method, target, params)
        self.transcript.requests.append(Request(leg, method, target, dict(params), reply.status))
        return reply

    def _fetch(self, leg: str, nxt: _Next, params: dict[str, str]) -> tuple[str, ET.Element | None]:
        """Request a TwiML URL, following 302s; the final URL and its document (None: failed)."""
        url, method, extra = nxt
        while True:
            reply = self._request(leg, method, url, {**params, **extra})
            if reply.status in (301, 302, 303, 307, 308) and reply.headers.get("location"):
                url = urljoin(url, reply.headers["location"])
                method = self.redirect_method
                self._step(leg, "302", url)
                continue
            if reply.status != 200:
                self._step(leg, "HTTP error", str(reply.status), {"url": url})
                return url, None
            if not reply.body.strip():
                self._step(leg, "Empty", "", {"url": url})
                return url, None
            try:
                return url, ET.fromstring(reply.body.encode("utf-8"))
            except ET.ParseError as exc:
                self._step(leg, "Bad XML", str(exc), {"url": url})
                return url, None

    def _run(self, leg: str, start: _Next, params: dict[str, str], digits: list[str | None]) -> str:
        """Run a leg until it ends: "hangup" (a <Hangup/> or the caller), or "end" of TwiML."""
        nxt: _Next | None = start
        while nxt is not None:
            url, document = self._fetch(leg, nxt, params)
            if document is None:
                return "end"
            nxt, ended = self._run_document(leg, url, document, params, digits)
            if ended:
                return ended
        return "end"

    def _run_document(
        self,
        leg: str,
        url: str,
        document: ET.Element,
        params: dict[str, str],
        digits: list[str | None],
    ) -> tuple[_Next | None, str]:
        for verb in document:
            tag, attrs, text = verb.tag, dict(verb.attrib), (verb.text or "").strip()
            if tag in ("Say", "Play", "Pause", "Message", "Reject"):
                self._step(leg, tag, verb.text or "", attrs)
                if tag == "Reject":
                    return None, "hangup"
            elif tag == "Hangup":
                self._step(leg, tag)
                return None, "hangup"
            elif tag == "Redirect":
                target = urljoin(url, text) if text else url
                self._step(leg, tag, target)
                return _Next(target, attrs.get("method", "POST"), {}), ""
            elif tag == "Gather":
                self._step(leg, tag, "", attrs)
                for child in verb:
                    self._step(leg, child.tag, child.text or "", dict(child.attrib))
                if not digits and self.ask is not None and leg == "caller":
                    digits.append(self.ask())
                if not digits:
                    self._step(leg, "Hung up", "during <Gather>")
                    return None, "hangup"
                pressed = digits.pop(0)
                if pressed is None:
                    self._step(leg, "No input")
                    continue
                self._step(leg, "Pressed", pressed)
                action = urljoin(url, attrs["action"]) if attrs.get("action") else url
                return _Next(action, attrs.get("method", "POST"), {"Digits": pressed}), ""
            elif tag == "Record":
                return self._record(leg, url, attrs), ""
            elif tag == "Dial":
                nxt = self._dial(leg, url, verb, params)
                if nxt is None:
                    return None, "hangup"
                if nxt.url:
                    return nxt, ""
            else:
                self._step(leg, tag, text, attrs)
        self._step(leg, "End")
        return None, "end"

    def _record(self, leg: str, url: str, attrs: dict[str, str]) -> _Next:
        self._step(leg, "Record", "", attrs)
        sid = f"RE{next(self._sids):032x}"
        recording = (
            f"https://api.twilio.com/2010-04-01/Accounts/{demo.ACCOUNT_SID}/Recordings/{sid}"
        )
        fields = {"RecordingUrl": recording, "RecordingSid": sid, "RecordingDuration": "7"}
        if attrs.get("transcribe") == "true" or attrs.get("transcribeCallback"):
            transcribed = self.transcription is not None
            transcription = {
                "TranscriptionSid": f"TR{next(self._sids):032x}",
                "TranscriptionStatus": "completed" if transcribed else "failed",
                "TranscriptionText": self.transcription or "",
                "TranscriptionUrl": f"{recording}/Transcriptions",
            }
            callback = urljoin(url, attrs.get("transcribeCallback") or url)
            self._callbacks.append((callback, {**fields, **transcription}))
        action = urljoin(url, attrs["action"]) if attrs.get("action") else url
        # The caller ends the message with "#", so the answer to this request is played.
        return _Next(action, attrs.get("method", "POST"), {**fields, "Digits": "#"})

    def _dial(self, leg: str, url: str, verb: ET.Element, params: dict[str, str]) -> _Next | None:
        """Run a <Dial>; the action to request, an empty URL to go on, None when the call ends."""
        attrs = dict(verb.attrib)
        conference = verb.find("Conference")
        if conference is not None:
            self._step(leg, "Conference", conference.text or "", conference.attrib)
            wait_url = conference.get("waitUrl")
            if wait_url:
                hold = _Next(urljoin(url, wait_url), conference.get("waitMethod", "POST"), {})
                _, music = self._fetch("hold", hold, params)
                for child in music if music is not None else ():
                    self._step("hold", child.tag, child.text or "", dict(child.attrib))
            return None
        # Who is dialled: phone numbers, Twilio Client identities, SIP addresses alike.
        targets = [n for n in verb if n.tag in ("Number", "Client", "Sip")]
        numbers = [
            ("client:" if n.tag == "Client" else "") + (n.text or "").strip() for n in targets
        ]
        urls = [n.get("url") for n in targets]
        if not numbers and (verb.text or "").strip():
            numbers, urls = [(verb.text or "").strip()], [None]
        self._step(leg, "Dial", ", ".join(numbers), attrs)
        for name in numbers:
            if name.startswith("client:"):  # a browser user's phone rings
                self._step(f"callee {name}", "Ringing")
        script = self.legs.pop(0) if self.legs else Leg()
        status = next((self.outcomes[n] for n in numbers if n in self.outcomes), script.status)
        if not numbers:
            status = "failed"
        elif status == "completed":
            index = min(script.answered_by, len(numbers) - 1)
            callee, whisper = numbers[index], urls[index]
            callee_leg = f"callee {callee}"
            self._step(callee_leg, "Answered")
            if whisper:
                callee_params = self._call_params(params["From"], callee, "outbound-dial")
                callee_params["ParentCallSid"] = params["CallSid"]
                digits = [script.digits] if script.digits is not None else [None]
                ended = self._run(
                    callee_leg, _Next(urljoin(url, whisper), "POST", {}), callee_params, digits
                )
                if ended == "hangup":
                    # Not documented: what Twilio reports when the whisper hangs the callee up.
                    status = "no-answer"
            if status == "completed":
                self._step(callee_leg, "Connected", params["From"])
        self._step(leg, "Dial ended", status)
        action = attrs.get("action")
        if not action:
            return _Next("", "POST", {})
        fields = {"DialCallStatus": status, "DialCallSid": f"CA{next(self._sids):032x}"}
        if status == "completed":
            fields["DialCallDuration"] = "42"
        return _Next(urljoin(url, action), attrs.get("method", "POST"), fields)
