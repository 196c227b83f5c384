"""GET /spend: the day's priced totals beside the daily budget.

Apart from spend.py so that the budget (which reads spend's totals) and spend never import each
other. The price job that fills the totals is the worker's (worker/prices.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.core import clock
from chalicelib.guards import budget, spend

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)


def get_spend(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /spend?day=YYYY-MM-DD (default: today, UTC): the day's charges as Twilio priced them.

    Raises:
        ValidationError: day is not a date.
    """
    from chalicelib.api.validation import ValidationError

    day = (ctx.query.get("day") or [spend.day_of(clock.now())])[-1]
    try:
        if not spend.DAY.fullmatch(day):
            raise ValueError(day)
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise ValidationError("day must be a date, YYYY-MM-DD", "day") from None
    totals = spend.totals_of(ctx.table.get(spend.day_key(day)) or {})
    usd = spend.view(
        spend.USD, totals.pop(spend.USD, {"total": Decimal(0), "count": 0, "prefixes": {}})
    )
    limit = budget.limit(ctx.parameters)
    answer = {"day": day, **usd}
    answer["daily_budget_usd"] = str(limit) if limit is not None else None
    answer["budget_reached"] = limit is not None and Decimal(usd["total"]) >= limit
    answer["other_currencies"] = [spend.view(c, e) for c, e in sorted(totals.items())]
    return 200, answer
