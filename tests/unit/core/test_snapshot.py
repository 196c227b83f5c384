"""SnapStart: nothing unique or secret is made at INIT, and `random` is reseeded after restore."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.core import snapshot

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def runtime_hooks():
    """The hooks registered with AWS's snapshot_restore_py (the library Lambda's Python
    runtimes ship, from PyPI here), emptied before and after."""
    import snapshot_restore_py

    registered = snapshot_restore_py.get_after_restore()
    registered.clear()
    yield registered
    registered.clear()


def test_local_runs_and_functions_without_snapstart_register_nothing(monkeypatch, runtime_hooks):
    for init_type in (None, "on-demand", "provisioned-concurrency"):
        if init_type is None:
            monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
        else:
            monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", init_type)
        assert snapshot.reseed_after_restore() is False
    assert runtime_hooks == []


def test_restored_environments_draw_their_own_random_numbers(monkeypatch, runtime_hooks):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    assert snapshot.reseed_after_restore() is True
    ((hook, args, kwargs),) = runtime_hooks
    assert (args, kwargs) == ((), {})
    saved = random.getstate()
    try:
        snapshotted = random.getstate()  # what INIT left in the snapshot

        def restore(with_hook: bool) -> list[float]:
            random.setstate(snapshotted)
            if with_hook:
                hook()
            return [random.random() for _ in range(3)]

        assert restore(False) == restore(False)  # the problem: one sequence for all
        assert restore(True) != restore(True)
    finally:
        random.setstate(saved)


def test_init_reads_no_parameter_builds_no_client_and_registers_the_hook(tmp_path):
    # INIT as SnapStart runs it: app.py imported with the hook library present and the
    # extension's port pointing nowhere. Anything read, built or connected here would be in the
    # snapshot, shared by every environment restored from it.
    code = """
import json, socket
def refuse(*args, **kwargs):
    raise AssertionError('INIT opened a connection')
socket.socket.connect = refuse
import sys
import app, snapshot_restore_py
from chalicelib.aws import clients, parameters
from chalicelib.core import settings
print(json.dumps({
    "hooks": [f.__module__ + "." + f.__qualname__ for f, _, _ in
              snapshot_restore_py.get_after_restore()],
    "imported": sorted(m for m in ("botocore", "twilio.rest") if m in sys.modules),
    "parameters": len(parameters._cache._entries) + len(parameters._named._entries),
    "clients": len(clients._clients) + (clients._session is not None),
    "settings": settings._loaded is not None,
}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SWITCHBOARD_"))}
    env.update(
        AWS_LAMBDA_INITIALIZATION_TYPE="snap-start",
        # The API handler below a full vCPU: its INIT would otherwise build a DynamoDB client.
        _HANDLER="app.app",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_DEFAULT_REGION="us-east-1",
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT="9",
        SWITCHBOARD_SSM_PATH="/switchboard/prod",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]),
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "hooks": ["chalicelib.core.snapshot._reseed"],
        "imported": ["botocore", "twilio.rest"],  # imports only: restored, never re-run
        "parameters": 0,
        "clients": 0,
        "settings": False,
    }
