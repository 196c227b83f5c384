"""A local stand-in for the AWS Parameters and Secrets Lambda Extension, backed by the moto server.

It answers the extension's HTTP interface on 127.0.0.1 (GET
/systemsmanager/parameters/get?name=NAME&withDecryption=true with the header
X-Aws-Parameters-Secrets-Token, answering GetParameter's JSON), so the app's extension path runs
in the local stack, the tests and the benchmark as it runs in Lambda. Like the real extension it
caches each value for a TTL (its SSM_PARAMETER_STORE_TTL, 300 s by default), so a rotated value
is not seen through it at once. Where the real extension's answer is undocumented (a name that is
not set), it gives the least helpful plausible one: a bare 4xx with a generic body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
PATH = "/systemsmanager/parameters/get"


class ExtensionServer:
    """Serves the extension's interface from an SSM client (the moto server's)."""

    def __init__(
        self,
        ssm: Any,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_ttl: float = 300.0,
        unset_status: int = 400,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ssm = ssm
        self.token = token
        self.host = host
        self.port = port
        self.cache_ttl = cache_ttl
        self.unset_status = unset_status
        self.clock = clock
        self.requests = 0
        self._cache: dict[tuple[str, bool], tuple[float, str]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Serve in a daemon thread; returns the port."""
        extension = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: requests name parameters

            def do_GET(self) -> None:
                extension.requests += 1
                status, body = extension.answer(self.path, self.headers.get(TOKEN_HEADER))
                payload = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.port

    def answer(self, raw_path: str, token: str | None) -> tuple[int, str]:
        """(status, body) for one request, as the extension answers."""
        from botocore.exceptions import ClientError

        parts = urlsplit(raw_path)
        if parts.path != PATH:
            return 404, json.dumps({"message": "not found"})
        if token != self.token:
            return 401, json.dumps({"message": "missing or wrong X-Aws-Parameters-Secrets-Token"})
        query = parse_qs(parts.query)
        name = (query.get("name") or [""])[0]
        decrypt = (query.get("withDecryption") or ["false"])[0] == "true"
        cached = self._cache.get((name, decrypt))
        if cached is not None and self.clock() < cached[0]:
            return 200, cached[1]
        try:
            answer = self.ssm.get_parameter(Name=name, WithDecryption=decrypt)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":
                return self.unset_status, "an unexpected error occurred while executing request"
            return 500, "an unexpected error occurred while executing request"
        parameter = answer["Parameter"]
        parameter.pop("LastModifiedDate", None)
        body = json.dumps({"Parameter": parameter, "ResultMetadata": {}}, default=str)
        self._cache[(name, decrypt)] = (self.clock() + self.cache_ttl, body)
        return 200, body

    def forget(self) -> None:
        """Empty the cache, as a new execution environment starts with none."""
        self._cache.clear()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ExtensionServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
