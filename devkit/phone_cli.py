"""`python -m devkit phone call|sms`: the phone on your desk, against the local stack or a stage.

A call runs the app's TwiML verb by verb (devkit/phone.py) and prints the transcript; it exits 0
when the call ended normally and 1 with a Twilio-debugger-style line when it did not: an HTTP
error (11200), a document that is not TwiML (12100), a verb Twilio does not know (12200) or a
call that never ends (a loop). A script (JSON, or YAML by its extension) gives the call's inputs
and what to expect:

    to: "+15005550006"
    url: http://127.0.0.1:8000/voice
    digits: ["1"]                 # one entry per <Gather>; "-" times out
    dial: {"+14155550100": no-answer}
    callee_keys: "1"              # what an answering callee presses at a whisper
    expect_say: ["Hello World"]
    expect_dial: ["+14155550100"]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.telephony import identities
from devkit import demo, stack
from devkit.events import SharedKey
from devkit.phone import Leg, OverHttp, Phone, Transcript, Transport, line

# TwiML's voice verbs and nouns as Twilio knows them; anything else is error 12200.
VERBS = frozenset(
    {
        "Say", "Play", "Pause", "Gather", "Record", "Dial", "Redirect", "Hangup", "Reject",
        "Message", "Sms", "Enqueue", "Leave", "Connect", "Pay", "Prompt", "Refer", "Start",
        "Stop", "Number", "Client", "Conference", "Sip", "Queue",
    }
)  # fmt: skip
# What the phone itself records besides verbs.
_EVENTS = frozenset(
    {
        "302", "HTTP error", "Empty", "Bad XML", "Pressed", "No input", "Hung up", "End",
        "Answered", "Ringing", "Connected", "Dial ended", "Transcription",
    }
)  # fmt: skip
OUTCOMES = ("completed", "busy", "no-answer", "failed")


def webhook_fields(path: str, account_sid: str) -> dict[str, str]:
    """The fields Twilio sends to a route: an inbound SMS to /sms, a status to the status
    callbacks, an inbound call to everything else (fresh SIDs each time, as Twilio's)."""
    route = urlsplit(path).path.rstrip("/")
    sid = secrets.token_hex(16)
    common = {"AccountSid": account_sid, "From": "+15105551212", "To": demo.NUMBER}
    if route.endswith("/sms"):
        sms = {"MessageSid": "SM" + sid, "SmsSid": "SM" + sid, "Body": "Hello", "NumMedia": "0"}
        return {**common, **sms}
    if route.endswith("/status/messages"):
        return {**common, "MessageSid": "SM" + sid, "MessageStatus": "delivered"}
    if route.endswith("/status/calls"):
        return {**common, "CallSid": "CA" + sid, "CallStatus": "completed"}
    return {
        **common,
        "CallSid": "CA" + sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def problems(transcript: Transcript) -> list[str]:
    """What went wrong in a call, Twilio-debugger style (empty: the call ended normally)."""
    found = []
    for step in transcript.steps:
        where = step.attrs.get("url", "")
        if step.verb == "HTTP error":
            found.append(f"11200 HTTP retrieval failure: HTTP {step.text} from {where}")
        elif step.verb == "Bad XML":
            found.append(f"12100 Document parse failure at {where}: {step.text}")
        elif step.verb not in VERBS and step.verb not in _EVENTS:
            found.append(f"12200 Schema validation warning: unknown verb <{step.verb}>")
    return found


def unmet(transcript: Transcript, script: dict[str, Any]) -> list[str]:
    """The script's expectations the call did not meet."""
    said = [s.text.strip() for s in transcript.steps if s.verb == "Say"]
    dialled = [s.text for s in transcript.steps if s.verb == "Dial"]
    missing = [f"expected to hear {t!r}" for t in script.get("expect_say", []) if t not in said]
    missing += [
        f"expected a <Dial> of {n}"
        for n in script.get("expect_dial", [])
        if not any(n in d for d in dialled)
    ]
    return missing


def _stage_token(args: argparse.Namespace) -> str | None:
    """The deployed stage's auth token, read from its parameters (never typed or printed)."""
    if not getattr(args, "stage", None):
        return None
    from devkit.secrets_cli import _call, _ssm

    ssm = _ssm()
    name = f"/switchboard/{args.stage}/twilio/auth_token"
    return _call(lambda: ssm.get_parameter(Name=name, WithDecryption=True))["Parameter"]["Value"]


def _shared_key(args: argparse.Namespace) -> SharedKey | None:
    """--signing-key ID: that SharedKey, its secret read from the stage's (or the local
    stack's) twilio/webhook_signing_keys, never typed or printed.

    Raises:
        SystemExit: the parameter does not list the key.
    """
    key_id = getattr(args, "signing_key", None)
    if not key_id:
        return None
    from chalicelib.webhooks import sharedkeys
    from devkit.secrets_cli import _call, _ssm

    ssm = _ssm()
    name = f"/switchboard/{getattr(args, 'stage', None) or 'dev'}/{sharedkeys.SIGNING_KEYS}"
    value = _call(lambda: ssm.get_parameter(Name=name, WithDecryption=True))["Parameter"]["Value"]
    secret = sharedkeys.parse(value).get(key_id)
    if secret is None:
        raise SystemExit(f"error: {name} lists no key {key_id}")
    return SharedKey(key_id, secret)


SCRIPT_KEYS = frozenset(
    {"to", "from", "url", "digits", "dial", "callee_keys", "expect_say", "expect_dial"}
)


def load_script(path: Path) -> dict[str, Any]:
    """A call script, JSON or YAML (by its extension).

    Raises:
        OSError: it cannot be read.
        ValueError: it is not a JSON or YAML mapping.
    """
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # PyYAML comes with chalice

        try:
            script = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc).splitlines()[0]) from None
    else:
        script = json.loads(text)
    if not isinstance(script, dict):
        raise ValueError("a script is a mapping of names to values")
    unknown = sorted(set(script) - SCRIPT_KEYS)
    if unknown:
        # A typo (urll:, expect_says:) would otherwise make a test that can never fail.
        raise ValueError(
            f"unknown key {unknown[0]!r}; a script knows {', '.join(sorted(SCRIPT_KEYS))}"
        )
    return script


def _typed_digits() -> str | None:
    """Keys typed at the terminal for a <Gather>: empty lets it time out."""
    try:
        typed = input("keys (Enter: no input, Ctrl-D: hang up)> ").strip()
    except EOFError:
        raise SystemExit(0) from None
    return typed or None


def call(args: argparse.Namespace, transport: Transport | None = None) -> int:
    """`phone call`: place a simulated inbound call and print its transcript."""
    script: dict[str, Any] = {}
    if args.script:
        try:
            script = load_script(Path(args.script))
        except (OSError, ValueError) as exc:
            _fail(f"cannot read the script {args.script}: {exc}")
            return 2  # a usage error, as argparse's
    state = stack.read_state()
    number = args.to or script.get("to") or demo.NUMBER
    url = args.url or script.get("url")
    client = getattr(args, "client", None)
    application = None
    if client is not None:
        # A browser user's call: Twilio requests the TwiML App's Voice URL, /client/voice.
        if not identities.valid(client):
            _fail(f"--client {client!r} is not a Twilio Client identity (letters, digits, _.@-)")
            return 2
        if not (args.to or script.get("to")):
            _fail("--client needs --to: the number or client:NAME the browser user dials")
            return 2
        application = args.application_sid or (demo.TWIML_APP_SID if state else None)
        if not application:
            return _fail("pass --application-sid (the stage's voice/twiml_app_sid)")
        url = url or (state.get("app_url", "") + "/client/voice" if state else "")
    if not url and transport is None:
        # As Twilio does: the number's configured voice URL (`numbers configure` changes it).
        url = configured_voice_url(number) or (state.get("app_url", "") + "/voice")
    url = url or ""
    if not url:
        return _fail("pass --url, or start the local stack with `make run`")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(f"--url {url!r} is not an http(s) URL (such as http://127.0.0.1:8000/voice)")
        return 2
    token = args.auth_token or _stage_token(args) or state.get("auth_token")
    if not token and transport is None:
        return _fail("pass --stage or --auth-token, or start the local stack with `make run`")
    outcomes = dict(script.get("dial", {}))
    for item in args.dial_outcome:
        number, _, outcome = item.rpartition("=")
        if outcome not in OUTCOMES:
            return _fail(f"--dial-outcome takes [NUMBER=]{'|'.join(OUTCOMES)}, not {item!r}")
        outcomes[number or "*"] = outcome
    status = outcomes.pop("*", "completed")
    keys = args.callee_keys or script.get("callee_keys")
    legs = [Leg(status=status, digits=keys)] * 20
    digits = script.get("digits") or [d for d in (args.digits or "").split(",") if d]
    phone = Phone(
        transport or OverHttp(token or "", shared_key=_shared_key(args)),
        caller=f"client:{client}"
        if client
        else args.sender or script.get("from") or "+15105551212",
        application_sid=application,
        number=number,
        digits=[None if d == "-" else d for d in digits],
        legs=legs,
        outcomes=outcomes,
        echo=lambda step: print(line(step), flush=True),
        ask=_typed_digits if sys.stdin.isatty() and transport is None else None,
    )
    try:
        transcript = phone.call(url)
    except RuntimeError as exc:  # the phone's guard against a call that never ends
        return _fail(f"loop: {exc}")
    except OSError as exc:
        return _fail(f"{url} could not be reached ({type(exc).__name__})")
    text = str(transcript)
    if args.transcript:
        Path(args.transcript).write_text(text + "\n")
    errors = problems(transcript) + unmet(transcript, script)
    for error in errors:
        print(f"error {error}" if error[:1].isdigit() else f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


def sms(args: argparse.Namespace, transport: Transport | None = None) -> int:
    """`phone sms`: a signed inbound SMS to the app; prints the replies."""
    state = stack.read_state()
    url = args.url or (state.get("app_url", "") + "/sms")
    if not url.startswith(("http://", "https://")):
        return _fail("pass --url, or start the local stack with `make run`")
    token = args.auth_token or _stage_token(args) or state.get("auth_token")
    if not token and transport is None:
        return _fail("pass --stage or --auth-token, or start the local stack with `make run`")
    params = webhook_fields(url, state.get("account_sid", demo.ACCOUNT_SID))
    params.update({"From": args.sender, "To": args.to, "Body": args.body})
    params["NumMedia"] = str(len(args.media or []))
    for i, media in enumerate(args.media or []):
        params[f"MediaUrl{i}"] = media
    try:
        http = OverHttp(token or "", shared_key=_shared_key(args))
        reply = (transport or http).request("POST", url, params)
    except OSError as exc:
        return _fail(f"{url} could not be reached ({type(exc).__name__})")
    if reply.status != 200:
        return _fail(f"11200 HTTP retrieval failure: HTTP {reply.status} from {url}")
    try:
        document = ET.fromstring(reply.body.encode("utf-8"))
    except ET.ParseError as exc:
        return _fail(f"12100 Document parse failure: {exc}")
    replies = [(m.text or "").strip() for m in document.iter("Message")]
    for text in replies:
        print(f"reply: {text}")
    if not replies:
        print("(no reply)")
    return 0


SIGNING_KEY_HELP = (
    "sign with this SharedKey (HMAC-SHA256) instead of the auth token; its secret is read "
    "from twilio/webhook_signing_keys"
)


def add_parser(commands: Any) -> None:
    """The `phone` command and its subcommands."""
    phone = commands.add_parser("phone", help="a simulated phone: place a call or send an SMS")
    verbs = phone.add_subparsers(dest="phone_command", required=True)
    place = verbs.add_parser("call", help="call the app and print the transcript")
    place.add_argument("--to", help=f"the number called (default {demo.NUMBER})")
    place.add_argument("--from", dest="sender", help="the caller (default +15105551212)")
    place.add_argument("--url", help="the voice URL (default: the local stack's /voice)")
    place.add_argument("--digits", help="keys for each <Gather>, comma-separated; - times out")
    place.add_argument(
        "--dial-outcome",
        action="append",
        default=[],
        metavar="[NUMBER=]OUTCOME",
        help=f"what a dialled number does: {', '.join(OUTCOMES)} (default completed)",
    )
    place.add_argument(
        "--callee-keys", help="the keys a dialled person presses at a whisper (findme: 1)"
    )
    place.add_argument(
        "--client",
        metavar="NAME",
        help="call as the browser user NAME (client:NAME) through /client/voice; --to is what "
        "they dial: a number or client:OTHER",
    )
    place.add_argument(
        "--application-sid",
        help="the TwiML App's SID with --client (default: the local stack's demo app)",
    )
    place.add_argument("--script", help="a JSON or YAML script: inputs and expect_say/expect_dial")
    place.add_argument("--transcript", help="also write the transcript to this file")
    place.add_argument("--stage", choices=stack.stages(), help="read the stage's auth token")
    place.add_argument("--auth-token", help="the stage's auth token (default: the local stack's)")
    place.add_argument("--signing-key", metavar="KEY_ID", help=SIGNING_KEY_HELP)
    place.set_defaults(func=call)
    text = verbs.add_parser("sms", help="send the app an inbound SMS and print its replies")
    text.add_argument("--from", dest="sender", default="+15105551212")
    text.add_argument("--to", default=demo.NUMBER)
    text.add_argument("--body", required=True)
    text.add_argument("--media", action="append", help="a media URL (repeatable)")
    text.add_argument("--url", help="the messaging URL (default: the local stack's /sms)")
    text.add_argument("--stage", choices=stack.stages(), help="read the stage's auth token")
    text.add_argument("--auth-token", help="the stage's auth token (default: the local stack's)")
    text.add_argument("--signing-key", metavar="KEY_ID", help=SIGNING_KEY_HELP)
    text.set_defaults(func=sms)


def configured_voice_url(number: str) -> str | None:
    """The voice URL the local Twilio has for number (None without a local stack)."""
    import requests

    state = stack.read_state()
    if not state.get("twilio_url"):
        return None
    try:
        answer = requests.get(
            f"{state['twilio_url']}/2010-04-01/Accounts/{state['account_sid']}"
            "/IncomingPhoneNumbers.json",
            params={"PhoneNumber": number},
            auth=(state["account_sid"], state["auth_token"]),
            timeout=5,
        )
        numbers = answer.json().get("incoming_phone_numbers", [])
    except (requests.RequestException, ValueError, KeyError):
        return None
    return numbers[0].get("voice_url") if numbers else None
