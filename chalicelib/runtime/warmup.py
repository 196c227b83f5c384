"""What a Lambda function does during INIT (module scope), decided per function and memory size.

Lambda runs INIT (process start and the import of app.py) at about a full vCPU whatever the
memory size, and bills it like INVOKE since August 2025; the handler then runs at the memory
size's share of a vCPU (1,769 MB is one vCPU, 128 MB about 7 %). Work moved from the first
event into INIT therefore runs up to 14 times faster, but every cold start of the function pays
for it, whichever route it serves. `make bench` models both halves (BENCHMARKS.md):

- the queue worker and the schedules always store and send, so they build their AWS clients and
  import the Twilio REST client during INIT at every size: below a full vCPU INIT runs up to 14
  times faster than their handler, and at any size INIT loads with the garbage collector paused
  (chalicelib/core/gcpause.py); at 1,769 MB the two placements measured within the noise;
- the API handler serves /voice (no SDK) as well as /sms and the API (botocore, twilio.rest).
  At 1,769 MB and above its handler runs at a full vCPU too, so nothing is gained by INIT work
  and /voice keeps its lean start: everything stays lazy. Below that, a lazy botocore would make
  the first /sms slower than an app with everything at module scope, so the route modules,
  botocore's DynamoDB client and twilio.rest are loaded during INIT, and /voice pays for them.

INIT that no request waits for changes the trade-off: under provisioned concurrency the API
handler loads everything at any size; under SnapStart INIT runs once per published version and
is restored from a snapshot, so it imports everything (free at every restore) but builds no
client or session (the snapshot must hold nothing of one environment's; chalicelib/core/
snapshot.py). Outside Lambda (tests, `chalice local`, the local stack, packaging) nothing is
preloaded: `_HANDLER` is Lambda's own variable. No credential, token or client of Twilio is made
here (the token is read on first use): what INIT builds holds no secret.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import NamedTuple

from chalicelib.core import gcpause

logger = logging.getLogger(__name__)
FULL_VCPU_MB = 1769
API_HANDLER = "app.app"
# The route modules the API handler imports lazily; preloaded with the SDKs below a full vCPU.
ROUTE_MODULES = (
    "chalicelib.webhooks.voice",
    "chalicelib.messaging.inbound",
    "chalicelib.messaging.status",
    "chalicelib.api.gate",
    "chalicelib.messaging.outbound",
    "chalicelib.messaging.broadcasts",
    "chalicelib.messaging.calls",
)
WORKER_MODULES = ("chalicelib.aws.jobs", "chalicelib.worker.dispatch")


class Plan(NamedTuple):
    """What INIT loads: modules to import, DynamoDB/SQS clients to build (and at which
    patience: "webhook" or "worker"), and whether to import twilio.rest."""

    modules: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    patience: str = "webhook"
    twilio: bool = False
    botocore: bool = False  # import botocore without building a session or a client


def plan(environ: Mapping[str, str]) -> Plan:
    """This function's INIT work, from Lambda's _HANDLER, AWS_LAMBDA_FUNCTION_MEMORY_SIZE and
    AWS_LAMBDA_INITIALIZATION_TYPE."""
    handler = environ.get("_HANDLER", "")
    if not handler.startswith("app."):
        return Plan()  # not running in Lambda
    init_type = environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    if init_type == "snap-start":  # restored, not run, at each cold start: no client inside
        modules = ROUTE_MODULES if handler == API_HANDLER else WORKER_MODULES
        return Plan(modules, twilio=True, botocore=True)
    if handler != API_HANDLER:  # the worker and the schedules: every event stores and sends
        return Plan(WORKER_MODULES, ("dynamodb", "sqs"), "worker", twilio=True)
    try:
        memory = int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    except ValueError:
        memory = 128
    if memory >= FULL_VCPU_MB and init_type != "provisioned-concurrency":
        return Plan()  # the handler runs at a full vCPU too: /voice keeps its lean start
    return Plan(ROUTE_MODULES, ("dynamodb",), "webhook", twilio=True)


def run(work: Plan) -> None:
    """Do work; a client that cannot be built (no region, say) is left to the first event that
    needs it, which fails as it would have without this, in its route's error shape."""
    with gcpause.paused():  # loads only: nothing it makes is garbage (chalicelib/core/gcpause.py)
        _run(work)


def _run(work: Plan) -> None:
    for name in work.modules:
        importlib.import_module(name)
    if work.clients:
        from chalicelib.aws import clients

        patience = clients.WORKER if work.patience == "worker" else clients.WEBHOOK
        with clients.patience(patience):
            for service in work.clients:
                try:
                    clients.client(service)
                except Exception:  # INIT must not fail the function
                    logger.warning(
                        "could not build a client during INIT", extra={"service": service}
                    )
    if work.botocore:
        import botocore.config
        import botocore.session  # noqa: F401  (botocore.client and what a client needs)
    if work.twilio:
        from chalicelib.telephony import twilio_rest

        twilio_rest.preload()
