"""The deployed layer (tests/deployed) skips without a stage and fails clearly without a stack."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.functional.devkit.test_package import ROOT


def _run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "tests/deployed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_stage_it_is_skipped_and_says_so():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_DEPLOYED")}
    result = _run(env)
    assert result.returncode == 0, result.stdout
    assert "no deployed stage: set SWITCHBOARD_DEPLOYED_STAGE" in result.stdout


def test_a_stage_that_was_never_deployed_fails_with_one_clear_line(moto_url):
    env = {
        **os.environ,
        "SWITCHBOARD_DEPLOYED_STAGE": "nosuch",
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = _run(env)
    assert result.returncode == 1
    assert "deployed stage 'nosuch': cannot read the stack switchboard-nosuch" in result.stdout
    assert "Traceback" not in result.stdout
