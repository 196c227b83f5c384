"""`devkit logs` over the local log file: filters by call, message and age."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from devkit import cli, logs_cli


@pytest.fixture
def log_file(tmp_path, monkeypatch):
    path = tmp_path / "app.log"
    now = datetime.now(UTC)
    lines = [
        {"timestamp": (now - timedelta(hours=2)).isoformat(), "message": "old", "call_sid": "CA1"},
        {"timestamp": now.isoformat(), "message": "call", "call_sid": "CA1"},
        {"timestamp": now.isoformat(), "message": "sms", "message_sid": "SM1"},
    ]
    path.write_text(
        "Serving on http://127.0.0.1:8000\n" + "".join(json.dumps(x) + "\n" for x in lines)
    )
    monkeypatch.setattr(logs_cli, "LOG_FILE", path)
    return path


def messages(capsys):
    return [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()]


def test_logs_filter_by_call_message_and_age(log_file, capsys):
    assert cli.main(["logs"]) == 0
    assert messages(capsys) == ["old", "call", "sms"]  # chalice's own line left out
    assert cli.main(["logs", "--call-sid", "CA1", "--since", "10m"]) == 0
    assert messages(capsys) == ["call"]
    assert cli.main(["logs", "--message-sid", "SM1"]) == 0
    assert messages(capsys) == ["sms"]


def test_a_bad_since_is_a_one_line_error(log_file):
    with pytest.raises(SystemExit, match="--since takes"):
        cli.main(["logs", "--since", "yesterday"])
