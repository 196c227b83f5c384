"""Spend: what Twilio charged for each message and call, counted once into per-day totals.

Twilio fills a price in some time after the final state (null until then) and states a charge
as a negative string ("-0.00790"). When a record with a SID reaches a final state, a `price` job
is queued (once per record); it fetches the price, and while Twilio has none it queues itself
again later, for up to PRICE_FOR. The price is then counted in one transaction that marks the
record `priced` (only if it is not yet) and ADDs to the day's totals, so a repeated callback, a
replayed job or a lost answer's retry never counts twice. Amounts are decimals end to end: parsed
with Decimal, added by DynamoDB (exact to 38 digits), never a binary float sum.

The day's item (`spend#YYYY-MM-DD`, by the UTC day of the final state) holds, per currency,
the count, the total spent (positive: Twilio's charge negated) and the same per destination
prefix: the country calling code and the next three digits (a NANP area code, a range
elsewhere), a bounded set that names where the money goes without naming anyone's number.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from chalicelib.aws import jobs
from chalicelib.aws.storage import ConditionFailedError, Table
from chalicelib.core import clock
from chalicelib.telephony.twilio_rest import TwilioError

if TYPE_CHECKING:
    from chalicelib.api.gate import ApiContext

logger = logging.getLogger(__name__)

# Final states Twilio bills: a message delivered, undelivered or failed (Twilio's failed-message
# processing fee); a call completed (calls not answered are not billed, their price stays null).
PRICED = frozenset({"delivered", "undelivered", "failed", "completed"})
PRICE_FOR = 24 * 3600.0  # Twilio's price is awaited this long after the final state
FIRST_FETCH = 30.0  # seconds after the final state; later fetches wait as long as already passed
MAX_PREFIXES = 500  # per currency and day; more fold into "other" (an item holds 400 KB)
TOP = 10
KEEP_DAYS = 400
USD = "USD"
_CURRENCY = re.compile(r"[A-Z]{3}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# ITU-T E.164 country codes of one and two digits; every other code has three.
_SHORT_CODE = re.compile(r"1|7|2[07]|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58]")


def day_of(seconds: float) -> str:
    """The UTC day of an instant, YYYY-MM-DD."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def day_key(day: str) -> str:
    """The table key of a day's totals."""
    return f"spend#{day}"


def charge(price: str) -> Decimal:
    """What Twilio's price string means as spend: Twilio states charges negative.

    Raises:
        ValueError: not a decimal number.
    """
    try:
        amount = Decimal(price.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError("not a price") from None
    if not amount.is_finite():
        raise ValueError("not a price")
    return -amount


def destination_prefix(number: str) -> str:
    """The country calling code and the next three digits of an E.164 number ("+1415"), or
    "other" for what is not one (a client: or SIP address)."""
    digits = number.removeprefix("whatsapp:")
    if not re.fullmatch(r"\+[1-9]\d{4,14}", digits):
        return "other"
    digits = digits[1:]
    code_length = next((n for n in (1, 2) if _SHORT_CODE.fullmatch(digits[:n])), 3)
    return "+" + digits[: code_length + 3]


def on_final(record: dict[str, Any], status: str, now: float) -> None:
    """A record reached a final state: queue its price fetch, once per record. Never raises
    (the move stands); a job that could not be queued is logged and that record not counted."""
    if status not in PRICED or not record.get("sid") or "priced" in record:
        return
    payload = {"pk": record["pk"], "sid": record["sid"], "final_at": now}
    try:
        jobs.defer("price", payload, delay=FIRST_FETCH, once=f"price:{record['pk']}")
    except jobs.JobQueueError:
        logger.error("could not queue a price fetch", extra={"id": record.get("id")})


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
        amount = charge(price)
    except ValueError:
        logger.error("Twilio's price is not a number; not counted", extra={"id": record["id"]})
        return
    currency = unit.upper() if unit and _CURRENCY.fullmatch(unit.upper()) else USD
    day = day_of(final_at)
    if count(table, record, price, amount, currency, day):
        logger.info("price counted", extra={"id": record["id"], "price": price, "unit": currency})
        if currency == USD:
            from chalicelib.guards import budget

            budget.check_after_count(table, day)


def _fetch_later(payload: dict[str, Any], record_id: str, waited: float) -> None:
    wait = min(max(waited, FIRST_FETCH), jobs.MAX_DELAY)
    if waited + wait > PRICE_FOR:
        logger.warning("Twilio gave no price within a day; not counted", extra={"id": record_id})
        return
    try:
        jobs.defer("price", payload, delay=wait)
    except jobs.JobQueueError:
        raise jobs.RetryLater(wait, "no price yet") from None


def count(
    table: Table, record: dict[str, Any], price: str, amount: Decimal, currency: str, day: str
) -> bool:
    """Mark the record priced and add amount to the day's totals, all or nothing; False when
    it was counted before (the transaction's retry after a lost answer is DynamoDB's own:
    same token, applied once)."""
    prefix = destination_prefix(str(record.get("to") or ""))
    totals = table.get(day_key(day)) or {}
    known = {k for k in totals if k.startswith(f"{currency}#p#") and k.endswith("#n")}
    if f"{currency}#p#{prefix}#n" not in known and len(known) >= MAX_PREFIXES:
        prefix = "other"
    names = {
        "#n": f"{currency}#count",
        "#t": f"{currency}#total",
        "#pn": f"{currency}#p#{prefix}#n",
        "#pt": f"{currency}#p#{prefix}#t",
    }
    day_start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    try:
        table.transact(
            [
                {
                    "update": record["pk"],
                    "expression": "SET priced = :price, price_unit = :unit",
                    "condition": "attribute_exists(pk) AND attribute_not_exists(priced)",
                    "values": {":price": price, ":unit": currency},
                },
                {
                    "update": day_key(day),
                    "expression": "ADD #n :one, #t :amount, #pn :one, #pt :amount "
                    "SET expires_at = if_not_exists(expires_at, :expires)",
                    "names": names,
                    "values": {
                        ":one": 1,
                        ":amount": amount,
                        ":expires": int(day_start + KEEP_DAYS * 86400),
                    },
                },
            ]
        )
    except ConditionFailedError:
        return False
    return True


def _decimal(value: Any) -> Decimal:
    # The table reads back numbers as int or float; a float's shortest repr is the decimal
    # DynamoDB holds for any total of up to 15 significant digits.
    return Decimal(str(value or 0))


def totals_of(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A day item's totals by currency: {"USD": {"total", "count", "prefixes": {p: [n, t]}}}."""
    found: dict[str, dict[str, Any]] = {}
    for name, value in item.items():
        currency, _, rest = name.partition("#")
        if not _CURRENCY.fullmatch(currency):
            continue
        entry = found.setdefault(currency, {"total": Decimal(0), "count": 0, "prefixes": {}})
        if rest == "count":
            entry["count"] = int(value)
        elif rest == "total":
            entry["total"] = _decimal(value)
        elif rest.startswith("p#"):
            prefix, _, part = rest[2:].rpartition("#")
            counts = entry["prefixes"].setdefault(prefix, [0, Decimal(0)])
            if part == "n":
                counts[0] = int(value)
            else:
                counts[1] = _decimal(value)
    return found


def text(amount: Decimal) -> str:
    """An amount as Twilio writes prices: five decimals at least ("0.02980"), more if it has."""
    places = -int(amount.as_tuple().exponent)
    return f"{amount:.{max(places, 5)}f}"


def _view(currency: str, entry: dict[str, Any]) -> dict[str, Any]:
    ranked = sorted(entry["prefixes"].items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
    return {
        "currency": currency,
        "total": text(entry["total"]),
        "count": entry["count"],
        "top_destinations": [
            {"prefix": prefix, "count": n, "total": text(total)}
            for prefix, (n, total) in ranked[:TOP]
        ],
    }


def get_spend(payload: dict[str, Any], ctx: ApiContext) -> tuple[int, dict[str, Any]]:
    """GET /spend?day=YYYY-MM-DD (default: today, UTC): the day's charges as Twilio priced them.

    Raises:
        ValidationError: day is not a date.
    """
    from chalicelib.api.validation import ValidationError
    from chalicelib.guards import budget

    day = (ctx.query.get("day") or [day_of(clock.now())])[-1]
    try:
        if not _DAY.fullmatch(day):
            raise ValueError(day)
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise ValidationError("day must be a date, YYYY-MM-DD", "day") from None
    totals = totals_of(ctx.table.get(day_key(day)) or {})
    usd = _view(USD, totals.pop(USD, {"total": Decimal(0), "count": 0, "prefixes": {}}))
    limit = budget.limit(ctx.parameters)
    answer = {"day": day, **usd}
    answer["daily_budget_usd"] = str(limit) if limit is not None else None
    answer["budget_reached"] = limit is not None and Decimal(usd["total"]) >= limit
    answer["other_currencies"] = [_view(c, e) for c, e in sorted(totals.items())]
    return 200, answer
