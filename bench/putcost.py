"""What one DynamoDB PutItem costs the calling process, with no database behind it.

A stub endpoint in its own process answers `{}` at once, either keeping the connection (as
DynamoDB does) or closing it after each answer (as moto's werkzeug server does). A child process
makes PutItems of an inbound-message record through `chalicelib.aws.storage` against it and reports
its own CPU per call; beside them, a bare socket round trip of the same request is the floor.

    python -m bench.putcost serve keep|close    (prints its port)
    python -m bench.putcost client URL COUNT keep|close    (prints JSON)
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.proc import ROOT, clean_environ, median

RECORD = {
    "pk": "in#SM00000000000000000000000000000000",
    "sid": "SM00000000000000000000000000000000",
    "kind": "inbound",
    "inbound": "inbound",
    "received_at": 1796000000.25,
    "from": "+15105550100",
    "to": "+15005550006",
    "body": "Hello there",
    "media_urls": [],
    "expires_at": 1803776000,
}


def serve(mode: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if mode == "keep" else "HTTP/1.0"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client(url: str, count: int, *, raw: bool) -> dict[str, float]:
    os.environ["AWS_ENDPOINT_URL"] = url
    from chalicelib.aws.storage import Table

    table = Table("switchboard-bench")
    for _ in range(50):
        table.put(RECORD, condition="attribute_not_exists(pk)")
    started = _cpu()
    for _ in range(count):
        table.put(RECORD, condition="attribute_not_exists(pk)")
    put = (_cpu() - started) / count
    if not raw:
        return {"put_us": put * 1e6}

    host, port = url.rsplit("/", 1)[-1].split(":")
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    with socket.create_connection((host, int(port))) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = _cpu()
        for _ in range(count):
            conn.sendall(request)
            answer = b""
            while not answer.endswith(b"{}"):
                answer += conn.recv(65536)
        raw = (_cpu() - started) / count
    return {"put_us": put * 1e6, "raw_us": raw * 1e6}


def measure(*, runs: int, count: int) -> dict[str, Any]:
    """Median CPU per PutItem against each stub, and of the bare round trip (kept connection)."""
    env = clean_environ()
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIAFAKEBENCHFAKEKEY",
            "AWS_SECRET_ACCESS_KEY": "fake-bench-secret-not-a-key",
            "AWS_SESSION_TOKEN": "fake-bench-session-token",
        }
    )
    samples: dict[str, list[float]] = {"keep": [], "close": [], "raw": []}
    for mode in ("keep", "close"):
        stub = subprocess.Popen(
            [sys.executable, "-m", "bench.putcost", "serve", mode],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{stub.stdout.readline().strip()}"  # type: ignore[union-attr]
            for _ in range(runs):
                result = subprocess.run(
                    [sys.executable, "-m", "bench.putcost", "client", url, str(count), mode],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
                data = json.loads(result.stdout)
                samples[mode].append(data["put_us"])
                if mode == "keep":
                    samples["raw"].append(data["raw_us"])
        finally:
            stub.kill()
            stub.wait()
    return {name: median(values) for name, values in samples.items()}


def main(argv: list[str]) -> None:
    if argv[0] == "serve":
        serve(argv[1])
    else:
        print(json.dumps(client(argv[1], int(argv[2]), raw=argv[3] == "keep")))


if __name__ == "__main__":
    main(sys.argv[1:])
