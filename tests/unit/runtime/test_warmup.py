"""INIT work per Lambda function and memory size (chalicelib/runtime/warmup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.runtime import warmup

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        # Outside Lambda (tests, chalice local, packaging): nothing.
        ({}, warmup.Plan()),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, warmup.Plan()),
        # The API handler: nothing at a full vCPU or more, its SDK path below.
        ({"_HANDLER": "app.app", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}, warmup.Plan()),
        ({"_HANDLER": "app.app", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}, warmup.Plan()),
        (
            {"_HANDLER": "app.app", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"},
            warmup.Plan(warmup.ROUTE_MODULES, ("dynamodb",), "webhook", twilio=True),
        ),
        (
            {"_HANDLER": "app.app", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "not a number"},
            warmup.Plan(warmup.ROUTE_MODULES, ("dynamodb",), "webhook", twilio=True),
        ),
        # INIT no request waits for: provisioned concurrency loads everything at any size;
        # SnapStart imports everything but builds no client (it would be in the snapshot).
        (
            {
                "_HANDLER": "app.app",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency",
            },
            warmup.Plan(warmup.ROUTE_MODULES, ("dynamodb",), "webhook", twilio=True),
        ),
        *[
            (
                {
                    "_HANDLER": "app.app",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory,
                    "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
                },
                warmup.Plan(warmup.ROUTE_MODULES, twilio=True, botocore=True),
            )
            for memory in ("128", "1769")
        ],
        (
            {
                "_HANDLER": "app.app",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            },
            warmup.Plan(),
        ),
        # The worker and the schedules load their send path at every size: they always use
        # it, and INIT loads it with the collector paused (even at a full vCPU, it is cheaper
        # there than on the first event).
        *[
            (
                {"_HANDLER": handler, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": size},
                warmup.Plan(warmup.WORKER_MODULES, ("dynamodb", "sqs"), "worker", twilio=True),
            )
            for handler in ("app.send_worker", "app.dispatch_due", "app.reconcile_sending")
            for size in ("128", "1024", "1769", "3008")
        ],
    ],
)
def test_plan_by_function_and_memory_size(environ, expected):
    assert warmup.plan(environ) == expected


PROBE = (
    "import json, sys, app; from chalicelib.aws import clients; "
    "print(json.dumps({'heavy': sorted(m for m in ('botocore', 'twilio.rest',"
    " 'twilio.base.version', 'twilio.rest.api', 'chalicelib.messaging.inbound')"
    " if m in sys.modules), "
    "'clients': sorted(f'{k[0]}:{k[1].attempts}' for k in clients._clients)}))"
)


def _import_app(**environ: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_HANDLER"))}
    env.update(environ)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


REGION = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}


def test_init_of_each_function_loads_what_its_plan_says():
    assert _import_app(**REGION) == {"heavy": [], "clients": []}
    api = {**REGION, "_HANDLER": "app.app"}
    assert _import_app(**api, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1769") == {
        "heavy": [],
        "clients": [],
    }
    assert _import_app(**api, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128") == {
        "heavy": ["botocore", "chalicelib.messaging.inbound", "twilio.base.version", "twilio.rest"],
        "clients": [f"dynamodb:{warmup_attempts('webhook')}"],
    }
    worker = _import_app(
        **REGION, _HANDLER="app.send_worker", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128"
    )
    assert worker == {
        # Never twilio.rest.api (the generated resources): chalicelib/telephony/twilio_api.py.
        "heavy": ["botocore", "twilio.base.version", "twilio.rest"],
        "clients": [f"dynamodb:{warmup_attempts('worker')}", f"sqs:{warmup_attempts('worker')}"],
    }


def test_a_client_that_cannot_be_built_at_init_does_not_fail_the_import():
    # No region: botocore refuses to build the client; the first event that needs it says so.
    found = _import_app(_HANDLER="app.send_worker", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128")
    assert found == {"heavy": ["botocore", "twilio.base.version", "twilio.rest"], "clients": []}


def warmup_attempts(patience: str) -> int:
    from chalicelib.aws import clients

    return (clients.WORKER if patience == "worker" else clients.WEBHOOK).attempts
