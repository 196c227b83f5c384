"""DynamoDB storage: one table, items keyed by kind ("msg#…", "optout#…"), conditional writes.

Every state change is a conditional update, so concurrent workers, overlapping schedules and
replayed queue records can race without sending twice or moving a record backwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from chalicelib.aws import clients

# Defined with the other domain errors so the webhook gate can catch it without importing
# this module (and what it imports) on the /voice path.
from chalicelib.core.errors import StorageError

logger = logging.getLogger(__name__)

# Sparse indexes declared in infra/resources.json.
BY_SID = "by-sid"
BY_STATE = "by-state"
BY_BROADCAST = "by-broadcast"
BY_INBOUND = "by-inbound"


class ConditionFailedError(Exception):
    """A conditional write found the item in another state; current holds it (or None)."""

    def __init__(self, current: dict[str, Any] | None, *, reasons: list[str] | None = None):
        super().__init__("condition failed")
        self.current = current
        # For a transaction: each write's cancellation code ("ConditionalCheckFailed", "None").
        self.reasons = reasons or []


def get_client() -> Any:
    """This container's DynamoDB client (the low-level one: see the README's "AWS access")."""
    return clients.client("dynamodb")


def reset() -> None:
    """Forget the tables and the clients, so the next call reads the environment (tests)."""
    _tables.clear()
    clients.reset()


def attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value ({"S": "…"}, {"N": "…"}, …)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, dict):
        return {"M": {str(k): attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute(v) for v in value]}
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError("DynamoDB numbers must be finite")
        return {"N": repr(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Decimal):
        return {"N": str(value)}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def value_of(attr: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as Python: numbers as int when whole, else float."""
    (kind, raw), *_ = attr.items()
    if kind == "S":
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "M":
        return {k: value_of(v) for k, v in raw.items()}
    if kind == "L":
        return [value_of(v) for v in raw]
    if kind == "BOOL":
        return raw
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_number(n) for n in raw}
    if kind == "B":
        return bytes(raw)
    if kind == "BS":
        return {bytes(b) for b in raw}
    raise ValueError(f"unknown DynamoDB type {kind}")


def _number(raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        number = Decimal(raw)
        return int(number) if number == number.to_integral_value() else float(number)


# DynamoDB's action names -> the botocore client's methods.
_OPERATIONS = {
    "GetItem": "get_item",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "Query": "query",
    "BatchWriteItem": "batch_write_item",
    "BatchGetItem": "batch_get_item",
    "TransactWriteItems": "transact_write_items",
}


class Table:
    """Typed access to the table: plain dicts in, plain dicts out."""

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = name
        self._client = client

    def _ser(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: attribute(v) for k, v in item.items()}

    def _de(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        if item is None:
            return None
        return {k: value_of(v) for k, v in item.items()}

    def _values(self, values: dict[str, Any] | None) -> dict[str, Any] | None:
        return self._ser(values) if values else None

    def _call(self, action: str, **request: Any) -> Any:
        """An action on this table (TableName added)."""
        return self._call_raw(action, {**request, "TableName": self.name})

    def _call_raw(self, action: str, request: dict[str, Any]) -> Any:
        """An action whose request names its tables itself (the batch actions).

        The one place DynamoDB's errors become ours: a failed condition carries the item as
        it is now (ReturnValuesOnConditionCheckFailure), anything else is a StorageError.
        """
        # botocore is loaded by the client by now; at module scope it would cost every importer.
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client or get_client()
        try:
            return getattr(client, _OPERATIONS[action])(**request)
        except (BotoCoreError, ClientError) as exc:
            code = clients.failure(exc)
            if code == "ConditionalCheckFailedException":
                raise ConditionFailedError(self._de(exc.response.get("Item"))) from exc
            answer = getattr(exc, "response", None) or {}
            reasons = [r.get("Code") for r in answer.get("CancellationReasons") or []]
            if code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
                raise ConditionFailedError(None, reasons=reasons) from exc
            raise StorageError(f"{action} failed: {code}") from exc

    def get(self, pk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        """The item with this key, or None."""
        answer = self._call("GetItem", Key=self._ser({"pk": pk}), ConsistentRead=consistent)
        return self._de(answer.get("Item"))

    def put(
        self,
        item: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        """Write a whole item, optionally only when condition holds.

        Raises:
            ConditionFailedError: the condition did not hold (current item attached).
        """
        self._call("PutItem", Item=self._ser(item), **self._expressions(condition, names, values))

    def update(
        self,
        pk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        returning: bool = True,
    ) -> dict[str, Any]:
        """Apply an update expression; returns the item as it is afterwards ({} unless returning).

        Raises:
            ConditionFailedError: the condition did not hold (current item attached).
        """
        answer = self._call(
            "UpdateItem",
            Key=self._ser({"pk": pk}),
            UpdateExpression=expression,
            ReturnValues="ALL_NEW" if returning else "NONE",
            **self._expressions(condition, names, values),
        )
        return self._de(answer.get("Attributes")) or {}

    def _expressions(
        self,
        condition: str | None,
        names: dict[str, str] | None,
        values: dict[str, Any] | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {}
        if condition:
            request["ConditionExpression"] = condition
            # A failed condition then carries the current item: callers decide from it.
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = self._values(values)
        return request

    def delete(
        self, pk: str, *, condition: str | None = None, values: dict[str, Any] | None = None
    ) -> None:
        """Remove an item (no error when absent), optionally only when condition holds.

        Raises:
            ConditionFailedError: the condition did not hold (current item attached).
        """
        request = self._expressions(condition, None, values)
        self._call("DeleteItem", Key=self._ser({"pk": pk}), **request)

    def transact(self, writes: list[dict[str, Any]]) -> None:
        """Apply writes all or none: each {"put": item, "condition": …, "values": {…}},
        {"update": pk, "expression": …, "condition": …, "names": {…}, "values": {…}} or
        {"delete": pk}.

        Raises:
            ConditionFailedError: a condition did not hold; reasons says whose (nothing written).
        """
        request = []
        for write in writes:
            if "delete" in write:
                request.append(
                    {"Delete": {"TableName": self.name, "Key": self._ser({"pk": write["delete"]})}}
                )
                continue
            if "update" in write:
                action, body = "Update", {"Key": self._ser({"pk": write["update"]})}
                body["UpdateExpression"] = write["expression"]
            else:
                action, body = "Put", {"Item": self._ser(write["put"])}
            body["TableName"] = self.name
            if write.get("condition"):
                body["ConditionExpression"] = write["condition"]
            if write.get("names"):
                body["ExpressionAttributeNames"] = write["names"]
            if write.get("values"):
                body["ExpressionAttributeValues"] = self._ser(write["values"])
            request.append({action: body})
        # botocore fills in ClientRequestToken, and its retry repeats it: DynamoDB answers a
        # repeat within ten minutes as the first, so a lost answer's retry applies nothing twice.
        self._call_raw("TransactWriteItems", {"TransactItems": request})

    def put_many(self, items: Iterable[dict[str, Any]]) -> None:
        """Write items in batches of 25, retrying what DynamoDB leaves unprocessed."""
        batch: list[dict[str, Any]] = []
        for item in items:
            batch.append({"PutRequest": {"Item": self._ser(item)}})
            if len(batch) == 25:
                self._write_batch(batch, time.sleep)
                batch = []
        if batch:
            self._write_batch(batch, time.sleep)

    def _write_batch(self, batch: list[dict[str, Any]], sleep: Any) -> None:
        pending = batch
        for attempt in range(8):
            answer = self._client_batch_write(pending)
            pending = answer.get("UnprocessedItems", {}).get(self.name, [])
            if not pending:
                return
            sleep(min(0.05 * 2**attempt, 1.0))
        raise StorageError("batch write left items unprocessed")

    def _client_batch_write(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call_raw("BatchWriteItem", {"RequestItems": {self.name: requests}})

    def get_many(self, pks: list[str]) -> dict[str, dict[str, Any]]:
        """Items by key (100 per request); missing keys are absent from the answer."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(pks), 100):
            keys = [self._ser({"pk": pk}) for pk in dict.fromkeys(pks[start : start + 100])]
            request = {self.name: {"Keys": keys, "ConsistentRead": True}}
            for _ in range(8):
                answer = self._call_raw("BatchGetItem", {"RequestItems": request})
                for raw in answer.get("Responses", {}).get(self.name, []):
                    item = self._de(raw) or {}
                    found[item["pk"]] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
        return found

    def query(
        self,
        index: str,
        key: str,
        value: Any,
        *,
        upper: Any = None,
        lower: Any = None,
        sort_key: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        start: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of an index query; returns (items, next start key or None)."""
        condition = "#k = :k"
        names = {"#k": key}
        values: dict[str, Any] = {":k": value}
        if sort_key and (upper is not None or lower is not None):
            names["#s"] = sort_key
            if upper is not None and lower is not None:
                condition += " AND #s BETWEEN :lo AND :hi"
                values.update({":lo": lower, ":hi": upper})
            elif upper is not None:
                condition += " AND #s <= :hi"
                values[":hi"] = upper
            else:
                condition += " AND #s >= :lo"
                values[":lo"] = lower
        request: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": self._ser(values),
            "ScanIndexForward": not descending,
        }
        if limit:
            request["Limit"] = limit
        if start:
            request["ExclusiveStartKey"] = self._ser(start)
        answer = self._call("Query", **request)
        items = [self._de(raw) or {} for raw in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        return items, (self._de(last) if last else None)

    def query_all(self, index: str, key: str, value: Any, **options: Any) -> Iterator[dict]:
        """Every item of an index query, page by page."""
        start = None
        while True:
            items, start = self.query(index, key, value, start=start, **options)
            yield from items
            if not start:
                return


_tables: dict[str, Table] = {}


def get_table(name: str) -> Table:
    """This container's Table for name."""
    table = _tables.get(name)
    if table is None:
        table = _tables[name] = Table(name)
    return table
