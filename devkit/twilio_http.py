"""The local Twilio's HTTP face: the server, its handler, and how a fault answers late or not at
all (devkit/fake_twilio.py holds the state and the API)."""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from devkit.twilio_control import control
from devkit.twilio_resources import ApiError, RecordedRequest, _basic_auth

if TYPE_CHECKING:
    from devkit.fake_twilio import FakeTwilio


class Late(Exception):
    """Answer this, but only after the faults' late_seconds (payload: the record as it is then)."""

    def __init__(self, status: int, payload: Callable[[], dict[str, Any]]) -> None:
        super().__init__("late")
        self.status, self.payload = status, payload


class Hangup(Exception):
    """Close the connection without an answer (the record may already exist)."""


class Handler(BaseHTTPRequestHandler):
    """One connection: the API (FakeTwilio._api) and the /_fake/* endpoints."""

    protocol_version = "HTTP/1.1"  # keep-alive, as twilio-python's requests session expects
    server_version = "FakeTwilio"
    timeout = 30  # an idle keep-alive connection gives its thread back eventually
    # Headers and body go out in two writes: without this, Nagle's algorithm meets the
    # client's delayed ACK and every answer takes ~40 ms.
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the default access log on stderr would clutter test and `make run` output."""

    def do_GET(self) -> None:
        fake, split = self.server.fake, urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if split.path.startswith("/_fake/"):
            self._send(*control(fake, self.command, split.path, raw))
            return
        if fake.latency > 0:
            time.sleep(fake.latency)
        query = parse_qsl(split.query, keep_blank_values=True)
        form = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        credentials = _basic_auth(self.headers.get("Authorization"))
        headers = {}
        username = credentials[0] if credentials else None
        try:
            status, payload = fake._api(self.command, split.path, query, form, credentials)
        except ApiError as error:
            status, payload, headers = error.status, error.body(), dict(error.headers)
            if status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        except Late as late:
            status = late.status
            fake._record(
                RecordedRequest(
                    self.command, split.path, query + form, username, status, time.time()
                )
            )
            time.sleep(fake.faults.late_seconds)
            self._send(status, late.payload())
            return
        except Hangup:
            fake._record(
                RecordedRequest(self.command, split.path, query + form, username, 0, time.time())
            )
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        fake._record(
            RecordedRequest(self.command, split.path, query + form, username, status, time.time())
        )
        self._send(status, payload, headers)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Twilio-Request-Id": "RQ" + secrets.token_hex(16),
            **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    """The local Twilio's listening socket, a thread per connection."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait on clients' idle keep-alive connections
    request_queue_size = 128  # socketserver's 5 drops bursts of connects: 1 s SYN retries

    def __init__(self, address: tuple[str, int], fake: FakeTwilio) -> None:
        super().__init__(address, Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hang up: not news
            super().handle_error(request, client_address)
