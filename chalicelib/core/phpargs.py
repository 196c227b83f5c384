"""PHP's request-variable parsing (``Key[]=``, ``Key[n]=``), as twimlets.com read its URLs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

# A parsed value: a string, or an "array" (dict in PHP insertion order, keys as strings).
PhpValue = Union[str, "dict[str, PhpValue]"]

# PHP's defaults: max_input_vars and max_input_nesting_level. Variables past the first are
# ignored (PHP warns), which also bounds the work a huge query can cause.
MAX_VARS = 1000
MAX_NESTING = 64
_WHITESPACE = " \t\n\r\0\x0b"


def parse(pairs: Iterable[tuple[str, str]]) -> dict[str, PhpValue]:
    """Parse decoded name/value pairs as PHP fills $_GET: arrays, last value wins, order kept."""
    result: dict[str, PhpValue] = {}
    for count, (name, value) in enumerate(pairs):
        if count >= MAX_VARS:
            break
        _assign(result, name, value)
    return result


def _assign(result: dict[str, PhpValue], name: str, value: str) -> None:
    if name.isalnum():  # most names (From, CallSid, PhoneNumber): a plain variable
        result[name] = value
        return
    name = name.lstrip(" ")
    bracket = name.find("[")
    base = name if bracket < 0 else name[:bracket]
    # PHP turns spaces and dots in the base name into underscores ("a.b" is $_GET["a_b"]).
    base = base.replace(" ", "_").replace(".", "_")
    if not base:
        return
    indexes: list[str | None] = []
    if bracket >= 0:
        rest = name[bracket:]
        while rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                if not indexes:
                    # An unclosed first bracket is not an array: "a[b" is the variable "a_b".
                    base = base + "_" + rest[1:]
                break
            index = rest[1:close]
            indexes.append(index or None)
            # Text after a closing bracket that does not open another one is ignored.
            rest = rest[close + 1 :]
        if len(indexes) > MAX_NESTING:
            return
    if not indexes:
        result[base] = value
        return
    container = result
    key: str | None = base
    for index in indexes:
        current = container.get(key) if key is not None else None
        if not isinstance(current, _Array):
            current = _Array()
            _store(container, key, current)
        container, key = current, index
    _store(container, key, value)


class _Array(dict):
    """A PHP array: a dict that knows its next integer index, so Key[] appends in O(1)."""

    __slots__ = ("next_index",)

    def __init__(self) -> None:
        super().__init__()
        self.next_index = 0


def _store(container: dict[str, PhpValue], key: str | None, value: PhpValue) -> None:
    if key is None:
        key = str(container.next_index) if isinstance(container, _Array) else "0"
    container[key] = value
    if isinstance(container, _Array) and _is_int_key(key):
        container.next_index = max(container.next_index, int(key) + 1)


def _is_int_key(key: str) -> bool:
    # PHP stores decimal-integer strings ("5", "-2", not "05") as integer keys, which set the next
    # index of "Key[]"; as strings here, "5" and 5 are the same key already.
    digits = key[1:] if key.startswith("-") else key
    return (
        digits.isascii()
        and digits.isdigit()
        and (digits == "0" or not digits.startswith("0"))
        and key != "-0"
        and len(digits) < 19
    )


def as_list(value: PhpValue | None) -> list[str]:
    """A parameter as a list of strings: a scalar is one entry; nested arrays are skipped."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [entry for entry in value.values() if isinstance(entry, str)]


def as_keyed(value: PhpValue | None) -> dict[str, str]:
    """A parameter as a keyed array of strings: a scalar is the entry with key "0"."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"0": value}
    return {key: entry for key, entry in value.items() if isinstance(entry, str)}


def truthy(value: PhpValue | None) -> bool:
    """PHP truthiness: present and neither "" nor "0" (an array: not empty)."""
    if value is None:
        return False
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def filtered(values: Iterable[str]) -> list[str]:
    """PHP array_filter: drop "" and "0"."""
    return [value for value in values if value not in ("", "0")]


def trim(value: str) -> str:
    """PHP trim: strip space, tab, newlines, NUL and vertical tab (not Unicode spaces)."""
    return value.strip(_WHITESPACE)
