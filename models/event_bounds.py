"""Bounds every decoded event must respect before any process acts on it.

msgspec checks types and shapes; these checks add what a type cannot say and what a
hostile or broken producer could otherwise send into a flow:
- numbers are finite and of bounded magnitude and precision: `Decimal("NaN")` breaks every
  comparison, and `int(Decimal("1e1000000"))` takes seconds (quadratic in the exponent);
- integers fit in 64 bits (nanosecond times, sequence ids), floats are finite;
- strings are bounded and hold no NUL (PostgreSQL refuses NUL in text, so an event carrying
  one would be acted on but never stored);
- lists and maps are bounded.

Pure: `problem(value)` names the first violation or returns None. The Kafka decoder
(`connectors.kafka.wire`) turns a violation into a dead letter with the reason, so the
check applies whatever reads the topic.
"""

from __future__ import annotations

import math
from decimal import Decimal
from itertools import chain
from typing import Any

import msgspec

from models.events import Levels

# A price or size of 1e30 is far outside any market; 30 digits before the point make
# every conversion cheap. `Levels` (the compiled book's crate) holds its numbers to the same
# bound, as its own constant (`quoteflow_book.MAX_DECIMAL_EXPONENT`, equal by a test).
MAX_DECIMAL_EXPONENT = 30
MAX_INT = 2**63 - 1  # nanosecond times and exchange sequence ids are int64 everywhere
MAX_TEXT = 4096  # characters of any string field: ids, names, reasons, details
MAX_ITEMS = 100_000  # entries of a list or a map (a deep book snapshot has a few thousand)
# DeadLetter.raw keeps the offending bytes; the decoder cuts them to a prefix this long
# (base64 makes 64 KiB into ~87 KiB of text).
MAX_RAW_TEXT = 128 * 1024
_LONG_TEXT_FIELDS = frozenset({"raw"})
_ZERO = Decimal(0)
_BOUND = Decimal(10) ** (MAX_DECIMAL_EXPONENT + 1)


def decimal_problem(number: Decimal) -> str | None:
    """Why `number` is unusable as a price, size or limit, or None.

    Large magnitudes only: those make conversions slow (`int()` is quadratic in the
    exponent). A tiny number or a long mantissa costs time linear in its length, which the
    message size bounds, and arithmetic rounds it to the context's precision.
    """
    if not number.is_finite():
        return f"{number} is not a finite number"
    if number and number.adjusted() > MAX_DECIMAL_EXPONENT:
        return f"{number:.3e} is out of range (at most 1e{MAX_DECIMAL_EXPONENT + 1})"
    return None


def problem(value: Any, where: str = "$") -> str | None:
    """The first bound `value` (an event, or any part of one) breaks, as `where: why`."""
    found = _check(value, MAX_TEXT)
    if found is None:
        return None
    path, reason = found
    return f"{where}{path}: {reason}"


_FIELDS: dict[type, tuple[tuple[str, int], ...]] = {}  # per Struct type: (field, text limit)
# Each check returns None, or (path below the value, reason); paths are built only on failure,
# so a valid event costs one dict lookup and one comparison or two per field.
_Found = tuple[str, str] | None


def _check(value: Any, text_limit: int) -> _Found:
    check = _CHECKS.get(type(value))
    if check is not None:
        return check(value, text_limit)
    if isinstance(value, msgspec.Struct):
        return _struct(value)
    return None


def _struct(value: msgspec.Struct) -> _Found:
    fields = _FIELDS.get(type(value))
    if fields is None:
        fields = _FIELDS[type(value)] = tuple(
            (name, MAX_RAW_TEXT if name in _LONG_TEXT_FIELDS else MAX_TEXT)
            for name in value.__struct_fields__
        )
    for name, limit in fields:
        item = getattr(value, name)
        check = _CHECKS.get(type(item))
        found = check(item, limit) if check is not None else _check(item, limit)
        if found is not None:
            return f".{name}{found[0]}", found[1]
    return None


def _text(text: str, limit: int) -> _Found:
    if len(text) > limit:
        return "", f"{len(text)} characters, at most {limit}"
    if "\x00" in text:
        return "", "holds a NUL character"
    return None


def _int(number: int, _limit: int) -> _Found:
    return None if -MAX_INT - 1 <= number <= MAX_INT else ("", "integer out of int64 range")


def _float(number: float, _limit: int) -> _Found:
    return None if math.isfinite(number) else ("", f"{number} is not finite")


def _decimal(number: Decimal, _limit: int) -> _Found:
    # A zero of any exponent is in range, as `decimal_problem` has it ("0E+99" was refused
    # here with the reason "None" when a book side took this item-by-item walk).
    if number.is_finite() and (number.adjusted() <= MAX_DECIMAL_EXPONENT or not number):
        return None
    return "", str(decimal_problem(number))


def _too_many(items: list | tuple | Levels) -> _Found:
    return ("", f"{len(items)} items, at most {MAX_ITEMS}") if len(items) > MAX_ITEMS else None


def _sequence(items: list | tuple, _limit: int) -> _Found:
    if len(items) > MAX_ITEMS:
        return _too_many(items)
    if items and type(items[0]) is tuple and _levels_in_bounds(items):
        return None
    for index, item in enumerate(items):
        found = _check(item, MAX_TEXT)
        if found is not None:
            return f"[{index}]{found[0]}", found[1]
    return None


def _levels_in_bounds(levels: list | tuple) -> bool:
    """The fast path for book levels, (price, size) pairs: one pass in C over all numbers.

    The sum of absolute values is finite and below the bound only if every number is; NaN
    propagates (or raises, sNaN), and a number past the context's exponent limit raises.
    Anything else (a non-Decimal, a failure) falls back to the item-by-item walk.
    """
    try:
        total = sum(map(abs, chain.from_iterable(levels)), _ZERO)
    except (ArithmeticError, TypeError):
        return False
    return type(total) is Decimal and total.is_finite() and total < _BOUND


def _mapping(items: dict, _limit: int) -> _Found:
    if len(items) > MAX_ITEMS:
        return "", f"{len(items)} entries, at most {MAX_ITEMS}"
    for key, item in items.items():
        found = _check(key, MAX_TEXT)
        if found is not None:
            return " (a key)", found[1]
        found = _check(item, MAX_TEXT)
        if found is not None:
            return f".{str(key)[:100]}{found[0]}", found[1]
    return None


def _nothing(_value: Any, _limit: int) -> _Found:
    return None


def _levels(levels: Levels, _limit: int) -> _Found:
    # `Levels` refuses, on construction, every number a list of pairs is checked for here
    # (not a finite decimal, or of 1e31 or more); only its length is left, checked as a
    # list's so a side gives the same reason either way (connectors.kafka.book_wire).
    return _too_many(levels)


_CHECKS: dict[type, Any] = {
    str: _text, int: _int, float: _float, Decimal: _decimal, list: _sequence,
    tuple: _sequence, dict: _mapping, bool: _nothing, type(None): _nothing, Levels: _levels,
}
