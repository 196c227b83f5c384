"""The daily budget, outbound/daily_budget_usd (unset: no cap).

Once the UTC day's USD spend (spend.py) reaches it: the worker holds queued, scheduled and
broadcast messages (`sending → held`, no attempt counted); POST /messages without send_at and
POST /calls answer 429 with reason "budget" and Retry-After until midnight UTC; and one ERROR
line that is also a CloudWatch metric (embedded metric format) is printed, once per day. The
dispatcher moves held messages back to `queued` (`held → queued`, conditional) once the day has
rolled over or the budget was raised.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from chalicelib.aws import parameters
from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock, settings
from chalicelib.core.errors import StorageError, TryLaterError
from chalicelib.guards import spend

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

PARAMETER = "outbound/daily_budget_usd"
HELD = "held"
METRIC = "DailyBudgetReached"
NAMESPACE = "Switchboard"


def limit(params: parameters.Parameters) -> Decimal | None:
    """The budget in dollars, None when unset. A value that is not a number of dollars counts
    as 0 (everything held) and is logged: a guard that a typo turned off would not be noticed."""
    raw = params.optional(PARAMETER)
    if raw is None or not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        logger.error(f"parameter {PARAMETER} is not a number of dollars; treated as 0")
        return Decimal(0)
    return value


def seconds_to_midnight(now: float) -> int:
    """Whole seconds until the next UTC day starts (at least 1)."""
    return max(1, math.ceil((math.floor(now / 86400) + 1) * 86400 - now))


def reached(table: Table, params: parameters.Parameters, day: str) -> bool:
    """Whether the day's USD spend has reached the budget; the first to see it announces it."""
    cap = limit(params)
    if cap is None:
        return False
    item = table.get(spend.day_key(day)) or {}
    spent = spend.totals_of(item).get(spend.USD, {}).get("total", Decimal(0))
    if spent < cap:
        return False
    if "budget_reached_at" not in item:
        _announce(table, day, spent, cap)
    return True


def _announce(table: Table, day: str, spent: Decimal, cap: Decimal) -> None:
    """One ERROR line per day, carrying the metric: a conditional mark on the day's item."""
    now, writer = clock.now(), os.urandom(8).hex()
    try:
        table.update(
            spend.day_key(day),
            "SET budget_reached_at = :now, budget_writer = :w, "
            "expires_at = if_not_exists(expires_at, :x)",
            condition="attribute_not_exists(budget_reached_at)",
            values={":now": now, ":w": writer, ":x": int(now + spend.KEEP_DAYS * 86400)},
            returning=False,
        )
    except ConditionFailedError as exc:
        if (exc.current or {}).get("budget_writer") != writer:
            return  # announced already (ours only if its answer was lost and retried)
    except StorageError:
        logger.warning("could not mark the budget reached; the next check will")
        return
    logger.error(
        "daily budget reached: queued and scheduled sends are held, API sends refused",
        extra={
            "day": day,
            "spent_usd": str(spent),
            "daily_budget_usd": str(cap),
            # Embedded metric format: CloudWatch Logs makes this line a metric data point.
            "_aws": {
                "Timestamp": int(now * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Service"]],
                        "Metrics": [{"Name": METRIC, "Unit": "Count"}],
                    }
                ],
            },
            "Service": "switchboard",
            METRIC: 1,
        },
    )


def check_request(ctx: ApiContext) -> None:
    """Refuse an immediate send or a call once the day's budget is spent.

    Raises:
        TryLaterError: 429, reason "budget", Retry-After until midnight UTC.
    """
    now = clock.now()
    if reached(ctx.table, ctx.parameters, spend.day_of(now)):
        raise TryLaterError(
            f"the daily budget ({PARAMETER}) is spent; try again after midnight UTC",
            retry_after=seconds_to_midnight(now),
            reason="budget",
        )


def check_after_count(table: Table, day: str) -> None:
    """After a price was counted: announce the budget reached as soon as it is."""
    # Unreadable now: the next check (a send, a price) announces it.
    with contextlib.suppress(parameters.ParameterStoreError, StorageError):
        reached(table, parameters.load(settings.load()), day)
