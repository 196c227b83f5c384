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

from chalicelib.aws.storage import ConditionFailedError, Table

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

# Final states Twilio bills: a message delivered, undelivered or failed (Twilio's failed-message
# processing fee); a call completed (calls not answered are not billed, their price stays null).
PRICE_FOR = 24 * 3600.0  # Twilio's price is awaited this long after the final state
MAX_PREFIXES = 500  # per currency and day; more fold into "other" (an item holds 400 KB)
TOP = 10
KEEP_DAYS = 400
USD = "USD"
CURRENCY = re.compile(r"[A-Z]{3}")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
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
        if not CURRENCY.fullmatch(currency):
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


def view(currency: str, entry: dict[str, Any]) -> dict[str, Any]:
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
