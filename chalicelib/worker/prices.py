"""The price job: a record's price fetched from Twilio once it is final, counted once.

Twilio fills in a message's or call's price some time after its final state; the job asks
until it does (for a day at most) and counts it in the day's totals (guards.spend), then lets
the budget announce itself when reached (guards.budget).
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.aws import jobs
from chalicelib.core import clock
from chalicelib.guards import budget, spend
from chalicelib.messaging import deps, messages
from chalicelib.telephony.twilio_rest import TwilioError

logger = logging.getLogger(__name__)


def price_job(payload: dict[str, Any]) -> None:
    """Job "price": fetch a record's price from Twilio and count it once.

    Raises:
        RetryLater: Twilio has no price yet and the queue refused the next fetch.
    """
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
    wait = min(max(waited, messages.FIRST_PRICE_FETCH), jobs.MAX_DELAY)
    if waited + wait > spend.PRICE_FOR:
        logger.warning("Twilio gave no price within a day; not counted", extra={"id": record_id})
        return
    try:
        jobs.defer("price", payload, delay=wait)
    except jobs.JobQueueError:
        raise jobs.RetryLater(wait, "no price yet") from None
