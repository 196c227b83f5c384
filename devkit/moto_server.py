"""A moto server for the local stack and the tests, with one request at a time.

moto's backends hold no locks, so two conditional DynamoDB writes arriving together can both
succeed, which real DynamoDB never allows. Serialising requests restores the atomicity the app's
claims rely on (the app itself stays concurrent). Long polls would hold the lock: callers here
receive with WaitTimeSeconds=0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterable
from typing import Any


class MotoServer:
    """moto in server mode on 127.0.0.1, port 0 by default; start() returns its URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Serve in a daemon thread; returns the URL once it accepts connections."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        # werkzeug logs every request at INFO; the app's own log lines are what matter.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with lock:
                return list(moto_app(environ, start_response))

        self._server = make_server(
            self.host, self.port, serialised, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM from whoever started this process stops it as Ctrl-C does.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Serve moto until interrupted: python -m devkit.moto_server [--host H] [--port N]."""
    parser = argparse.ArgumentParser(prog="python -m devkit.moto_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = MotoServer(args.host, args.port)
    # Callers in other processes (the benchmark) read the URL from this first line.
    print(f"moto server on {server.start()}; Ctrl-C stops it", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut stop() short
        server.stop()


if __name__ == "__main__":
    main()
