"""The ops CLI's `webhook`: each route's own fields, full URLs, and one-line errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from devkit import cli, demo

TOKEN = demo.AUTH_TOKEN


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server on 127.0.0.1 that records each request and checks its Twilio signature."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            params = dict(parse_qsl(body, keep_blank_values=True))
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            valid = RequestValidator(TOKEN).validate(
                url, params, self.headers.get("X-Twilio-Signature", "")
            )
            seen.append({"path": self.path, "params": params, "valid": valid})
            self.send_response(200 if valid else 403)
            self.send_header("Content-Type", "text/xml")
            self.end_headers()
            self.wfile.write(b"<Response/>")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_an_sms_webhook_carries_an_inbound_messages_fields(receiver, capsys):
    base, seen = receiver
    argv = ["webhook", "/sms", "--url", base, "--auth-token", TOKEN, "--param", "Body=STOP"]
    assert cli.main(argv) == 0
    (request,) = seen
    assert request["valid"]
    params = request["params"]
    assert {"MessageSid", "SmsSid", "Body", "To", "From"} <= set(params)
    assert params["MessageSid"].startswith("SM") and params["Body"] == "STOP"
    assert "CallSid" not in params
    assert "HTTP 200" in capsys.readouterr().out


def test_a_voice_webhook_and_the_full_url_that_url_prints(receiver):
    base, seen = receiver
    url = f"{base}/twimlets/message?Message%5B0%5D=Hello"
    assert cli.main(["webhook", url, "--auth-token", TOKEN]) == 0
    assert cli.main(["webhook", url, "--auth-token", TOKEN]) == 0
    first, second = seen
    assert first["valid"] and first["path"] == "/twimlets/message?Message%5B0%5D=Hello"
    assert first["params"]["CallSid"] != second["params"]["CallSid"]  # each call its own


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["/sms", "--param", "Body"], "--param takes NAME=VALUE"),
        (["/voice", "--param", "From"], "--param takes NAME=VALUE"),
        (["/sms", "--param", "=x"], "--param takes NAME=VALUE"),
        (["voice"], "the webhook path 'voice' must start with /"),
        (["htp://x/voice"], "the webhook path 'htp://x/voice' must start with /"),
    ],
)
def test_a_malformed_argument_is_a_one_line_usage_error(receiver, capsys, argv, said):
    base, seen = receiver
    with pytest.raises(SystemExit) as stopped:
        cli.main(["webhook", *argv, "--url", base, "--auth-token", TOKEN])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {said}") and len(err.strip().splitlines()) == 1
    assert seen == []


def test_an_unreachable_app_is_a_one_line_error():
    with pytest.raises(SystemExit) as stopped:
        cli.main(["webhook", "http://127.0.0.1:9/voice", "--auth-token", TOKEN])
    assert "could not be reached" in str(stopped.value)
