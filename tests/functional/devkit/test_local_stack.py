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


def test_ctrl_c_stops_everything(stack):
    process, port, _ = stack
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert "Local stack stopped." in output
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not (ROOT / ".local" / "stack.json").exists()
