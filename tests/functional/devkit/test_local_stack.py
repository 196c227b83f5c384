"""The README's quick start as a new user runs it: `make run`'s stack and its printed examples."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit import cognito

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stack():
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TWILIO_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as a terminal gives it, even when pytest itself was started with SIGINT ignored
        # (a background job of a non-interactive shell): an ignored signal survives exec.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    banner = []
    deadline = time.monotonic() + 90
    for line in process.stdout:
        banner.append(line)
        if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
            break
    assert "Ctrl-C stops everything" in "".join(banner), "".join(banner)
    yield process, port, "".join(banner)
    if process.poll() is None:
        # SIGTERM: the stack stops its parts and removes its state file, which the CLI (and
        # other tests' CLI calls) would otherwise take for a running stack.
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _example(banner: str, marker: str) -> list[str]:
    line = next(line.strip() for line in banner.splitlines() if line.strip().startswith(marker))
    argv = shlex.split(line)
    if argv[0] == ".venv/bin/python":
        argv[0] = sys.executable
    return argv


def test_printed_webhook_example_works(stack):
    _, _, banner = stack
    result = subprocess.run(
        _example(banner, ".venv/bin/python -m devkit webhook"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HTTP 200" in result.stdout
    assert "<Say>Hello World</Say>" in result.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_printed_curl_example_works(stack):
    _, _, banner = stack
    result = subprocess.run(
        _example(banner, "curl"), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "<Response><Say>Hello World</Say></Response>" in result.stdout


def test_printed_send_example_reaches_the_fake_twilio(stack):
    _, _, banner = stack
    result = subprocess.run(
        _example(banner, ".venv/bin/python -m devkit send"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"sid": "SM' in result.stdout
    assert '"status": "sent"' in result.stdout


def test_local_worker_sends_a_broadcast(stack):
    import json
    import urllib.request

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devkit",
            "broadcast",
            "--to",
            "+15105550101,+15105550102",
            "--body",
            "Local broadcast",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broadcast_id = json.loads(result.stdout)["id"]
    state = json.loads((ROOT / ".local" / "stack.json").read_text())
    deadline = time.monotonic() + 30
    sent = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(state["twilio_url"] + "/_fake/messages") as answer:
            sent = [m for m in json.load(answer) if m.get("body") == "Local broadcast"]
        if len(sent) == 2:
            break
        time.sleep(0.5)
    assert sorted(m["to"] for m in sent) == ["+15105550101", "+15105550102"]
    shown = subprocess.run(
        [sys.executable, "-m", "devkit", "status", "broadcast", broadcast_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"count": 2' in shown.stdout


def devkit(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a person does, against the running stack."""
    return subprocess.run(
        [sys.executable, "-m", "devkit", *argv],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_send_then_status_watch_follows_it_to_delivered(stack):
    import json

    sent = devkit("send", "--to", "+15105551212", "--body", "watch me")
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["id"]
    watched = devkit("status", "message", message_id, "--watch", "--timeout", "30")
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout[watched.stdout.index("{") :])["status"] == "delivered"


def test_secrets_put_shows_at_once_and_values_stay_masked(stack):
    put = devkit("secrets", "put", "voice/greeting", stdin="Welcome to the local stack\n")
    assert put.returncode == 0, put.stderr
    listed = devkit("secrets", "list")
    assert "twilio/auth_token" in listed.stdout
    assert "local-demo-auth-token" not in listed.stdout  # masked unless --show
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = devkit("phone", "call")
        if "Welcome to the local stack" in answer.stdout:
            break
        time.sleep(0.5)
    assert "Welcome to the local stack" in answer.stdout
    devkit("secrets", "delete", "voice/greeting")
    other = devkit("secrets", "list", "--stage", "prod")
    assert other.returncode == 1
    assert other.stderr == (
        "error: no parameters under /switchboard/prod: no such stage here "
        "(the local stack seeds only the dev stage)\n"
    )


def test_inbound_takes_durations_like_logs_and_refuses_a_zero_limit(stack):
    assert devkit("phone", "sms", "--from", "+15105550144", "--body", "Hi there").returncode == 0
    recent = devkit("inbound", "--since", "10m")
    assert recent.returncode == 0, recent.stderr
    assert "Hi there" in recent.stdout
    zero = devkit("inbound", "--limit", "0")
    assert zero.returncode == 2 and zero.stderr.startswith("error: --limit must be 1 or more")
    assert devkit("inbound", "--since", "ten minutes").returncode != 0


def test_stop_then_a_refused_send_then_start(stack):
    number = "+15105550123"
    assert devkit("phone", "sms", "--from", number, "--body", "STOP").returncode == 0
    refused = devkit("send", "--to", number, "--body", "hello?")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == "error: HTTP 409: the recipient has opted out (opted_out)\n"
    assert devkit("phone", "sms", "--from", number, "--body", "START").returncode == 0
    assert devkit("send", "--to", number, "--body", "hello again").returncode == 0


def test_numbers_configure_changes_what_a_call_reaches(stack):
    _, port, _ = stack
    app = f"http://127.0.0.1:{port}"
    moved = devkit("numbers", "configure", "+15005550006", "--base", f"{app}/nowhere")
    assert moved.returncode == 0, moved.stderr
    broken = devkit("phone", "call", "--to", "+15005550006")
    assert broken.returncode == 1 and "11200" in broken.stderr
    assert devkit("numbers", "configure", "+15005550006", "--base", app).returncode == 0
    fixed = devkit("phone", "call", "--to", "+15005550006")
    assert fixed.returncode == 0 and "Say" in fixed.stdout


def test_an_outbound_call_runs_its_url_and_its_callbacks_complete_the_record(stack):
    import json

    placed = devkit("call", "--to", "+15105551212")
    assert placed.returncode == 0, placed.stderr
    call_id = json.loads(placed.stdout)["id"]
    watched = devkit("status", "call", call_id, "--watch", "--timeout", "30")
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout[watched.stdout.index("{") :])["status"] == "completed"
    state = json.loads((ROOT / ".local" / "stack.json").read_text())
    import urllib.request

    with urllib.request.urlopen(state["twilio_url"] + "/_fake/calls") as answer:
        calls = json.load(answer)
    ran = next(c for c in calls if c["sid"] == json.loads(placed.stdout)["sid"])
    assert "Say" in ran["transcript"]  # the app's /voice answered the callee


def test_a_broadcast_from_a_csv_with_a_progress_bar_and_its_rejections(stack, tmp_path):
    sheet = tmp_path / "list.csv"
    sheet.write_text("number,name\n+15105550201,Ann\n+15105550202,Bo\nnot-a-number,Cy\n")
    sent = devkit("broadcast", "--to", str(sheet), "--body", "From a sheet", "--watch")
    assert sent.returncode == 0, sent.stderr
    assert "2 recipients, 1 rejected" in sent.stderr and "invalid_number: 1" in sent.stderr
    assert "[##############################] 2/2" in sent.stderr
    import json

    broadcast_id = json.loads(sent.stdout[: sent.stdout.rindex("}\n{") + 2])["id"]
    listed = devkit("status", "broadcast", broadcast_id, "--recipients")
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == [
        "+15105550201",
        "+15105550202",
    ]


def test_a_call_with_the_token_read_from_the_stages_parameters(stack):
    called = devkit("phone", "call", "--stage", "dev")
    assert called.returncode == 0, called.stderr
    assert "Say" in called.stdout


def test_scripted_calls_through_twimlets(stack, tmp_path):
    from tests.functional.devkit import flows

    _, port, _ = stack
    app = f"http://127.0.0.1:{port}"
    menu = flows.findme_menu(app)
    script = tmp_path / "flow.yaml"
    script.write_text(flows.unanswered(menu))
    unanswered = devkit("phone", "call", "--script", str(script))
    assert unanswered.returncode == 0, unanswered.stdout + unanswered.stderr
    assert "Record" in unanswered.stdout
    script.write_text(flows.answered(menu))
    answered = devkit("phone", "call", "--script", str(script))
    assert answered.returncode == 0 and "Connected" in answered.stdout, answered.stderr
    room = flows.twimlet(app, "conference", ("Name", "standup"), ("Password", "4321"))
    joined = devkit("phone", "call", "--url", room, "--digits", "4321")
    assert joined.returncode == 0 and "Conference" in joined.stdout, joined.stderr


# Last: it stops the stack the tests above share.
def test_the_faults_cli_finds_the_running_stacks_moto_server(stack):
    import json

    def faults(*args: str) -> dict:
        command = [sys.executable, "-m", "devkit", "faults", "aws", *args]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    # A match no request of the app contains: the stack's other tests stay untouched.
    scripted = faults("--script", "dynamodb:PutItem", "throttle", "--match", "no-such-body")
    assert scripted["scripts"] == [
        {"operation": "dynamodb:PutItem", "faults": ["throttle"], "match": "no-such-body"}
    ]
    assert faults()["scripts"] == scripted["scripts"]
    assert faults("--reset")["scripts"] == []


def test_the_voicemail_twimlet_works_out_of_the_box(stack):
    url = "http://127.0.0.1:{}/twimlets/voicemail?Email=owner%40switchboard.example"
    _, port, _ = stack
    call = devkit("phone", "call", "--url", url.format(port))
    assert call.returncode == 0, call.stderr
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "voicemail email sent" in devkit("logs", "--since", "5m").stdout:
            break
        time.sleep(0.5)
    assert "voicemail email sent" in devkit("logs", "--since", "5m").stdout


def test_the_softphone_example_and_page_work_out_of_the_box(stack):
    """The banner's softphone lines: the page is served with the local pool's settings, its
    demo user signs in against the moto server's Cognito, and the printed browser call runs."""
    import requests

    _, port, banner = stack
    page = requests.get(f"http://127.0.0.1:{port}/phone", timeout=10)
    assert page.status_code == 200, page.text
    assert "data-client-id=" in page.text
    result = subprocess.run(
        _example(banner, ".venv/bin/python -m devkit phone call --client"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dial" in result.stdout and "+15105551212" in result.stdout
    moto = next(line.split()[-1] for line in banner.splitlines() if "(moto server" in line)
    client_id = page.text.split('data-client-id="')[1].split('"')[0]
    signed_in = cognito.sign_in(moto, client_id, "alice", "Local-demo-password-1")
    assert "AuthenticationResult" in signed_in, signed_in
    token = signed_in["AuthenticationResult"]["IdToken"]
    grant = requests.post(
        f"http://127.0.0.1:{port}/client/token", headers={"Authorization": token}, timeout=10
    )
    assert grant.status_code == 200, grant.text
    assert grant.json()["identity"] == "alice"


def test_ctrl_c_stops_everything(stack):
    process, port, _ = stack
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)  # a loaded 2-core CI box can be slow to stop
    assert "Local stack stopped." in output
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not (ROOT / ".local" / "stack.json").exists()
