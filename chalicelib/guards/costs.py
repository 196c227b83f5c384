"""The price job and GET /spend: spend's counting and the daily budget's check together.

Apart from spend.py so that the budget (which reads spend's totals) and spend never import each
other.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalicelib.aws import jobs
from chalicelib.core import clock
from chalicelib.guards import budget, spend
from chalicelib.telephony.twilio_rest import TwilioError

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)


def price_job(payload: dict[str, Any]) -> None:
    """Job "price": fetch a record's price from Twilio and count it once.

    Raises:
        RetryLater: Twilio has no price yet and the queue refused the next fetch.
    """
    from chalicelib.messaging import deps  # the worker's: loaded only where jobs run

    table = deps.table()
    record = table.get(str(payload["pk"]))
    if record is None or "priced" in record:
        return  # gone (retention) or counted already: a replayed job
    final_at, now = float(payload["final_at"]), clock.now()
    try:
        price, unit = deps.twilio().fetch_price(str(payload["sid"]))
    except TwilioError as exc:
        logger.warning("could not fetch a price", extra={"id": record["id"], "error": exc.message})
        price, unit = None, None
    if price is None:
        _fetch_later(payload, record["id"], now - final_at)
        return
    try:
        amount = spend.charge(price)
    except ValueError:
        logger.error("Twilio's price is not a number; not counted", extra={"id": record["id"]})
        return
    currency = unit.upper() if unit and spend.CURRENCY.fullmatch(unit.upper()) else spend.USD
    day = spend.day_of(final_at)
    if spend.count(table, record, price, amount, currency, day):
        logger.info("price counted", extra={"id": record["id"], "price": price, "unit": currency})
        if currency == spend.USD:
            budget.check_after_count(table, day)


def _fetch_later(payload: dict[str, Any], record_id: str, waited: float) -> None:
    wait = min(max(waited, spend.FIRST_FETCH), jobs.MAX_DELAY)
    if waited + wait > spend.PRICE_FOR:
        logger.warning("Twilio gave no price within a day; not counted", extra={"id": record_id})
        return
    try:
        jobs.defer("price", payload, delay=wait)
    except jobs.JobQueueError:
        raise jobs.RetryLater(wait, "no price yet") from None


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
