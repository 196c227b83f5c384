"""The local stack behind `make run`: moto server, fake Twilio API and `chalice local`."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devkit import cognito, console, demo, resources
from devkit.moto_server import MotoServer
from devkit.ssm_extension import ExtensionServer

ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = ROOT / ".local" / "stack.json"
HOST = "127.0.0.1"
# The Lambda extension's port, as the packaged template sets it (devkit/extension_layer.py).
EXTENSION_PORT = 2773
# The local Twilio's port, kept from run to run (another is taken only when this one is busy).
TWILIO_PORT = 8001


def read_state() -> dict[str, Any]:
    """What a running local stack wrote for the CLI to find it ({} when none runs)."""
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


PUBLIC_URL = "SWITCHBOARD_PUBLIC_URL"


def stages() -> list[str]:
    """The stages .chalice/config.json defines: adding one there is all the CLI needs."""
    config = Path(__file__).resolve().parents[1] / ".chalice" / "config.json"
    return sorted(json.loads(config.read_text()).get("stages", {}))


def app_environment(moto_url: str, twilio_url: str, public_url: str) -> dict[str, str]:
    """The environment `chalice local` runs the app with: AWS is the moto server."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TWILIO_", "SWITCHBOARD_"))
    }
    env.update(demo.AWS_CREDENTIALS)
    env.update(
        {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_DEFAULT_REGION": demo.REGION,
            # The dev stage reads parameters through the Lambda extension on this port.
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(EXTENSION_PORT),
            "AWS_SESSION_TOKEN": demo.SESSION_TOKEN,
            "TWILIO_API_BASE_URL": twilio_url,
            "SWITCHBOARD_PUBLIC_URL": public_url,
            # Short, so `secrets put` shows at once locally (a stage keeps its 300 s).
            "SWITCHBOARD_SECRETS_TTL": "2",
            "PYTHONUNBUFFERED": "1",
            # chalice local warns on every request that it does not check IAM locally.
            "PYTHONWARNINGS": "ignore::UserWarning:chalice.local",
        }
    )
    return env


def _client(service: str, moto_url: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=demo.REGION,
        aws_access_key_id=demo.AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=demo.AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def seed(moto_url: str) -> dict[str, str]:
    """Demo parameters in SSM (every twimlet's: the voicemail sender, verified in the local
    SES; the softphone's API key and TwiML App), the table and queues of infra/resources.json
    (stage dev), and the softphone's user pool with its demo user."""
    values = {
        **demo.parameters(api_key=True),
        "voicemail/from_email": (demo.VOICEMAIL_FROM, "String"),
        "voice/twiml_app_sid": (demo.TWIML_APP_SID, "String"),
    }
    demo.put_parameters(_client("ssm", moto_url), demo.SSM_PATH, values)
    _client("ses", moto_url).verify_email_identity(EmailAddress=demo.VOICEMAIL_FROM)
    names = resources.create(
        "dev", dynamodb=_client("dynamodb", moto_url), sqs=_client("sqs", moto_url)
    )
    pool = cognito.create_local(_client("cognito-idp", moto_url), "dev")
    names["UserPoolClientId"] = pool["client_id"]
    return names


def wait_for_port(host: str, port: int, *, timeout: float, process: Any = None) -> None:
    """Wait until something accepts connections on host:port.

    Raises:
        RuntimeError: the process exited or the port stayed closed until timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on {host}:{port} within {timeout:.0f} s")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def _stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            # The group may outlive its leader (the reloader's child): end it too.
            os.killpg(process.pid, signal.SIGKILL)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            continue
        return


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM (CI, process managers) stops the stack as Ctrl-C does.
    raise KeyboardInterrupt


def run(port: int = 8000) -> int:
    """Start everything, print how to use it, and stop it all on Ctrl-C."""
    from devkit.fake_twilio import FakeTwilio

    # moto's werkzeug server logs every request; the app's own JSON lines are what matter here.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for needed in (port, EXTENSION_PORT):
        if not _port_free(HOST, needed):
            print(f"Port {needed} is in use (is `make run` already running?); stop what runs there")
            return 1
    moto = MotoServer(HOST)
    moto_url = moto.start()
    twilio = FakeTwilio(
        accounts={demo.ACCOUNT_SID: demo.AUTH_TOKEN},
        api_keys={demo.API_KEY_SID: (demo.API_KEY_SECRET, demo.ACCOUNT_SID)},
        host=HOST,
        port=TWILIO_PORT if _port_free(HOST, TWILIO_PORT) else 0,
    )
    twilio.on_create = console.accepted
    twilio.complete_after = 1.0  # messages go on to sent and delivered, calls to completed
    twilio_url = twilio.start()
    app_url = f"http://{HOST}:{port}"
    # The demo number rings this app, as `numbers configure` points a real one at a stage.
    twilio.numbers.add(
        demo.ACCOUNT_SID,
        demo.NUMBER,
        voice_url=f"{app_url}/voice",
        voice_fallback_url=f"{app_url}/fallback",
        sms_url=f"{app_url}/sms",
    )
    app = worker = extension = None
    try:
        names = seed(moto_url)
        # A tunnel's public URL (README: a real number against the local stack) is what Twilio
        # signs; the app checks signatures against it instead of its own address.
        env = app_environment(moto_url, twilio_url, os.environ.get(PUBLIC_URL) or app_url)
        env.update(
            {
                "SWITCHBOARD_SSM_PATH": demo.SSM_PATH,
                "SWITCHBOARD_TABLE": names["MessagesTable"],
                "SWITCHBOARD_QUEUE": names["SendQueue"],
                # The softphone page signs in against the moto server's Cognito.
                "SWITCHBOARD_USER_POOL_CLIENT_ID": names["UserPoolClientId"],
                "SWITCHBOARD_COGNITO_URL": moto_url,
            }
        )
        # The dev stage reads parameters through the Lambda extension's port; serve it.
        extension = ExtensionServer(
            _client("ssm", moto_url), token=demo.SESSION_TOKEN, port=EXTENSION_PORT, cache_ttl=2.0
        )
        extension.start()
        app = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("chalice")),
                "--project-dir",
                str(ROOT),
                "local",
                "--stage",
                "dev",
                "--host",
                HOST,
                "--port",
                str(port),
                # chalice local's reloader polls every file under the project, .venv included,
                # each second, and restarts on any change (this stack's own log too), dropping
                # requests in flight: restart `make run` after an edit instead.
                "--no-autoreload",
            ],
            env=env,
            # Its own process group: the reloader's child goes down with it on stop.
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # chalice local runs neither schedules nor queue handlers: this process does.
        worker = subprocess.Popen(
            [sys.executable, "-m", "devkit.worker"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        console.LOG_FILE.parent.mkdir(exist_ok=True)
        log = console.LOG_FILE.open("w", encoding="utf-8")
        for process in (app, worker):
            console.pump(process.stdout, log)
        wait_for_port(HOST, port, timeout=60, process=app)
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(
            json.dumps(
                {
                    "app_url": app_url,
                    "moto_url": moto_url,
                    "twilio_url": twilio_url,
                    "account_sid": demo.ACCOUNT_SID,
                    "auth_token": demo.AUTH_TOKEN,
                },
                indent=2,
            )
        )
        print(banner(app_url, moto_url, twilio_url), flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        app.wait()
        return app.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (app, worker):
            if process is not None:
                _stop_group(process)
        if extension is not None:
            extension.stop()
        twilio.stop()
        moto.stop()
        STATE_FILE.unlink(missing_ok=True)
        print("Local stack stopped.", flush=True)


def banner(app_url: str, moto_url: str, twilio_url: str) -> str:
    """What is running and commands that work against it."""
    from twilio.request_validator import RequestValidator

    params = {"CallSid": "CA" + "0" * 32, "From": "+15105551212", "To": demo.NUMBER}
    signature = RequestValidator(demo.AUTH_TOKEN).compute_signature(f"{app_url}/voice", params)
    form = " ".join(f"--data-urlencode '{k}={v}'" for k, v in params.items())
    py = ".venv/bin/python"
    return f"""
Switchboard is running locally (no AWS account, no Twilio account):
  app (chalice local, stage dev)   {app_url}
  AWS (moto server: SSM, DynamoDB, SQS, SES, S3, Cognito)  {moto_url}
  Parameters and Secrets extension  http://127.0.0.1:{EXTENSION_PORT} (backed by the moto server)
  AWS faults (500, throttle, hang, lost)  {py} -m devkit faults aws --help  ({moto_url}/_faults)
  schedules and queue worker       running (python -m devkit.worker)
  Twilio REST API (local fake)     {twilio_url}   (sent messages: {twilio_url}/_fake/messages)

Try, in another terminal:
  # a signed voice webhook, as Twilio would send it
  curl -s {app_url}/voice -H 'X-Twilio-Signature: {signature}' {form}
  {py} -m devkit webhook /voice --param From=+15105551212
  # send an SMS through the API (lands in the fake Twilio API)
  {py} -m devkit send --to +15105551212 --body "Hello from Switchboard"
  # schedule one for two minutes from now; the local dispatcher and worker send it
  {py} -m devkit send --to +15105551212 --body "Reminder" --in 120
  # the softphone page: sign in as {cognito.DEMO_USER} / {cognito.DEMO_PASSWORD}. Offline it signs
  # in and gets its token, but Twilio's voice servers are out of reach: the phone places calls
  open {app_url}/phone
  {py} -m devkit phone call --client {cognito.DEMO_USER} --to +15105551212

Ctrl-C stops everything.
"""
