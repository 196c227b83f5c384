"""A moto server for the local stack and the tests, with one request at a time.

moto's backends hold no locks, so two conditional DynamoDB writes arriving together can both
succeed, which real DynamoDB never allows. Serialising requests restores the atomicity the app's
claims rely on (the app itself stays concurrent). Long polls would hold the lock: callers here
receive with WaitTimeSeconds=0.

The fault layer (devkit/aws_faults.py) sits outside that lock, so a request it holds on purpose
holds up no other.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import threading
from collections.abc import Iterable
from typing import Any

from devkit import moto_cloudformation
from devkit.aws_faults import AwsFaults, FaultLayer

_sqs_offset = [0.0]  # seconds SQS's clock runs ahead of the real one (tests move it)


def advance_sqs_clock(seconds: float) -> None:
    """Let seconds pass for SQS's delays and visibility timeouts, without waiting them (tests
    move the app's clock alike)."""
    _sqs_offset[0] += seconds


def reset_sqs_clock() -> None:
    """SQS's clock back to the real one."""
    _sqs_offset[0] = 0.0


def speed_up_sqs() -> None:
    """Make moto's SQS answer in time linear in what it returns, not quadratic in what it holds.

    moto 5.2 recomputes every queue attribute (each a scan of all messages) for each message it
    sends or receives, and reads the clock through datetime arithmetic for each message scanned
    (twice): with 2,000 delayed messages a ReceiveMessage of ten costs ~1.5 s of CPU, so the
    local stack could not pace faster than ~10 messages/s. These replacements compute the same
    values: the retention check reads the one attribute it needs, scans read the clock once,
    and the clock is time.time().
    """
    import time

    from moto.sqs import models

    if getattr(models, "_switchboard_fast", False):
        return

    def unix_time(dt: Any = None) -> float:
        return time.time() + _sqs_offset[0] if dt is None else original_unix_time(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def delayed(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    original_unix_time = models.unix_time
    models.Queue.messages = property(messages)
    models.Queue.approximate_number_of_messages_delayed = property(delayed)
    models.Queue.approximate_number_of_messages_not_visible = property(not_visible)
    models.unix_time = unix_time
    models.unix_time_millis = unix_time_millis
    models.SQSBackend.is_message_valid_based_on_retention_period = (
        is_message_valid_based_on_retention_period
    )
    models._switchboard_fast = True


class MotoServer:
    """moto in server mode on 127.0.0.1, port 0 by default; start() returns its URL.

    ``faults`` (off until configured) makes chosen requests fail as AWS does; tools in other
    processes reach it at ``{url}/_faults``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.url = ""
        self.faults = AwsFaults()
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

        speed_up_sqs()
        # werkzeug logs every request at INFO; the app's own log lines are what matter.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        moto_app = DomainDispatcherApplication(create_backend_app)
        # Which backend serves a host is a scan of every service's URL patterns per request
        # (~1 ms); the answer depends on the host alone, so remember it.
        backend_for_host = functools.lru_cache(maxsize=256)(moto_app.get_backend_for_host)
        moto_app.get_backend_for_host = backend_for_host  # type: ignore[method-assign]
        lock = threading.Lock()

        def serialised(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with lock:
                # Importing moto's CloudFormation takes ~1 s: only a server that is asked for it
                # (make deploy's tests) pays for it and for the transform.
                if "/cloudformation/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
                    moto_cloudformation.install()
                return list(moto_app(environ, start_response))

        self._server = make_server(
            self.host,
            self.port,
            FaultLayer(serialised, self.faults),
            threaded=True,
            request_handler=MotoRequestHandler,
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
