"""The app's side of a paced-sending run: create a broadcast, then tick and poll as devkit.worker.

`python -m bench.paced_worker CONFIG.json`, with the app's environment (moto, fake Twilio,
SWITCHBOARD_SEND_RATE). The dispatcher ticks every `tick` seconds and `pollers` threads receive
batches of ten, as the deployed event source does; it stops once the app's own records say every
message is sent (or at the timeout) and writes what it saw to the config's result path.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

EXECUTE_API = "https://abc123defg.execute-api.us-east-1.amazonaws.com/api"


def recipients(count: int) -> list[str]:
    """count distinct E.164 numbers (up to 10,000)."""
    return [f"+1415555{i:04d}" for i in range(count)]


def _api(application: Any, method: str, path: str, payload: Any = None) -> dict[str, Any]:
    from devkit.events import LambdaContext, rest_event

    event = rest_event(
        method,
        EXECUTE_API + path,
        routes=list(application.app.routes),
        body=json.dumps(payload) if payload is not None else None,
        headers={"Content-Type": "application/json"},
    )
    answer = application.app(event, LambdaContext())
    return {"status": answer["statusCode"], "json": json.loads(answer["body"] or "null")}


def run(config: dict[str, Any]) -> dict[str, Any]:
    import boto3

    import app as application
    from chalicelib.core import settings
    from devkit.events import LambdaContext
    from devkit.worker import QueueDriver, schedule_event

    count = config["count"]
    started = time.time()
    created = _api(application, "POST", "/broadcasts", {"to": recipients(count), "body": "Paced"})
    if created["status"] != 202:
        raise RuntimeError(f"broadcast answered {created}")
    broadcast = created["json"]["id"]
    created_at = time.time()
    driver = QueueDriver(
        boto3.client("sqs"), settings.load().require_queue(), application.send_worker
    )
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"received": 0, "failed": 0, "poll_errors": 0, "dispatch_runs": 0}

    def poll() -> None:
        while not stop.is_set():
            try:
                received, failed = driver.poll_once()
            except Exception:  # as devkit.worker: a local hiccup must not end the run
                received = failed = 0
                with lock:
                    counts["poll_errors"] += 1
            with lock:
                counts["received"] += received
                counts["failed"] += failed
            if not received:
                # No long polling: the moto server answers one request at a time.
                stop.wait(0.5)

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(config["pollers"])]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + config["timeout"]
    timed_out = False
    try:
        while True:
            application.dispatch_due(schedule_event("dispatch-due"), LambdaContext("dispatch"))
            counts["dispatch_runs"] += 1
            with lock:
                handled = counts["received"] - counts["failed"]
            if handled >= count:
                states = _api(application, "GET", f"/broadcasts/{broadcast}")["json"]["counts"]
                if states == {"sent": count}:
                    break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(config["tick"])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return {
        "started": started,
        "created": created_at,
        "finished": time.time(),
        "timed_out": timed_out,
        "cpu": time.process_time(),
        **counts,
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    result = run(config)
    with open(config["result"], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
