"""The emulators the benchmark measures against: moto and fake Twilio in their own processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

from bench.proc import ROOT, clean_environ, process_cpu
from devkit import demo, resources
from devkit.ssm_extension import ExtensionServer

SESSION_TOKEN = "bench-session-token"
NAMES = resources.names("dev")
TABLE = NAMES["MessagesTable"]
QUEUE = NAMES["SendQueue"]


def _spawn(args: list[str], env: dict[str, str], pattern: str) -> tuple[subprocess.Popen, str]:
    """Start a server process and read its URL from the first line it prints."""
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline() if proc.stdout else ""
    found = re.search(pattern, line)
    if not found:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{args[1]} did not start: {line!r}")
    # Keep draining, so that anything it prints later cannot fill the pipe and block it.
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
    return proc, found.group(1)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http(method: str, url: str, payload: Any = None, timeout: float = 30) -> Any:
    """A JSON request to one of the emulators' control endpoints."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body = answer.read()
    return json.loads(body) if body else None


class Stack:
    """moto server and fake Twilio (each its own process) and the extension (a thread here)."""

    def __init__(self) -> None:
        self.moto: subprocess.Popen | None = None
        self.twilio: subprocess.Popen | None = None
        self.extension: ExtensionServer | None = None
        self.moto_url = self.twilio_url = ""
        self._saved_environ: dict[str, str] | None = None

    def start(self) -> Stack:
        try:
            env = clean_environ()
            self.moto, self.moto_url = _spawn(
                ["-m", "devkit.moto_server", "--port", "0"], env, r"on (http://\S+);"
            )
            env = {
                **env,
                "TWILIO_ACCOUNT_SID": demo.ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": demo.AUTH_TOKEN,
            }
            self.twilio, self.twilio_url = _spawn(
                ["-m", "devkit.fake_twilio", "--port", "0"], env, r"on (http://\S+) for"
            )
            # Whatever this process builds with boto3 (the quickstart's module-scope client when
            # its routes are read) talks to the moto server, never to AWS.
            self._saved_environ = dict(os.environ)
            os.environ.update(demo.AWS_CREDENTIALS)
            os.environ.update(
                {"AWS_DEFAULT_REGION": demo.REGION, "AWS_ENDPOINT_URL": self.moto_url}
            )
            self.extension = ExtensionServer(self.client("ssm"), token=SESSION_TOKEN)
            self.extension.start()
            self.reset()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.extension is not None:
            self.extension.stop()
        _stop(self.twilio)
        _stop(self.moto)
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client on the moto server, for seeding and reading."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name=demo.REGION,
            aws_access_key_id=demo.AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=demo.AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def reset(self, *, latency: float = 0.0) -> None:
        """Empty both emulators, then the demo parameters, table and queues again."""
        http("POST", f"{self.moto_url}/moto-api/reset")
        demo.put_parameters(self.client("ssm"), demo.SSM_PATH, demo.parameters())
        resources.create("dev", dynamodb=self.client("dynamodb"), sqs=self.client("sqs"))
        http("POST", f"{self.twilio_url}/_fake/reset")
        http("POST", f"{self.twilio_url}/_fake/config", {"latency": latency})

    def twilio_requests(self) -> list[dict[str, Any]]:
        """The fake Twilio API's request log."""
        return http("GET", f"{self.twilio_url}/_fake/requests", timeout=120)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the moto server and the fake Twilio processes."""
        assert self.moto is not None and self.twilio is not None
        return {"moto": process_cpu(self.moto.pid), "twilio": process_cpu(self.twilio.pid)}

    def env(self, app: str, *, extension: bool = True, **extra: str) -> dict[str, str]:
        """The environment a measured app runs with: AWS is the moto server, as in the tests.

        app is "switchboard", "quickstart", "lean-sdk" or "floor"; extension configures the
        Lambda extension variables for Switchboard (it then reads parameters without botocore;
        the lean SDK app always reads them through the extension).
        """
        assert self.extension is not None
        env = clean_environ()
        # Lambda always sets the role's credentials, region and session token.
        env.update(demo.AWS_CREDENTIALS)
        env.update(
            {
                "AWS_DEFAULT_REGION": demo.REGION,
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_SESSION_TOKEN": SESSION_TOKEN,
                "TWILIO_API_BASE_URL": self.twilio_url,
            }
        )
        if app.startswith("switchboard"):
            env.update(
                {
                    "SWITCHBOARD_SSM_PATH": demo.SSM_PATH,
                    "SWITCHBOARD_TABLE": TABLE,
                    "SWITCHBOARD_QUEUE": QUEUE,
                }
            )
            if extension:
                env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(self.extension.port)
        elif app == "quickstart":
            env.update(
                {
                    "AUTH_TOKEN_PARAMETER": f"{demo.SSM_PATH}/twilio/auth_token",
                    "TABLE_NAME": TABLE,
                    "TWILIO_ACCOUNT_SID": demo.ACCOUNT_SID,
                    "TWILIO_FROM_NUMBER": demo.NUMBER,
                }
            )
        elif app == "lean-sdk":
            env.update(
                {
                    "AUTH_TOKEN_PARAMETER": f"{demo.SSM_PATH}/twilio/auth_token",
                    "TABLE_NAME": TABLE,
                    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.extension.port),
                }
            )
        env.update(extra)
        return env
