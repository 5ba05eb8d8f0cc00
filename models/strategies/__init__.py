"""Quoting models and the registry that builds them from `name` + string parameters.

A strategy is a frozen dataclass whose fields are its parameters: the field's type is the
declared type, its default the default and `metadata["help"]` the help text. The registry
reads them from there, so a new model needs no other declaration (see docs/strategies.md).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import NamedTuple

from models.strategies.avellaneda_stoikov import AvellanedaStoikov
from models.strategies.avellaneda_stoikov_infinite import AvellanedaStoikovInfinite
from models.strategies.bandit import Bandit
from models.strategies.base import Bounds, DesiredQuotes, MarketState, QuoteLevel, Strategy
from models.strategies.fixed_offset import FixedOffset
from models.strategies.glft import GLFT
from models.strategies.ladder import Ladder

__all__ = [
    "STRATEGIES",
    "Bounds",
    "DesiredQuotes",
    "MarketState",
    "Param",
    "QuoteLevel",
    "Strategy",
    "build_strategy",
    "strategy_params",
]

STRATEGIES: dict[str, type] = {
    cls.name: cls
    for cls in (Ladder, AvellanedaStoikov, AvellanedaStoikovInfinite, GLFT, FixedOffset, Bandit)
}


class Param(NamedTuple):
    type: type
    default: float | int
    help: str
    bounds: Bounds


# A parameter's text is a number: 40 characters hold any sensible one, and bounding the
# text keeps every conversion cheap (int() of a long digit string is quadratic).
MAX_VALUE_TEXT = 40
MAX_VALUE_INT = 10**18


def _strategy_class(name: str) -> type:
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r}; known: {known}") from None


def strategy_params(name: str) -> dict[str, Param]:
    """The parameters `name` accepts, in declaration order, for --help and docs."""
    cls = _strategy_class(name)
    hints = typing.get_type_hints(cls)
    return {
        f.name: Param(hints[f.name], f.default, f.metadata["help"], f.metadata["bounds"])
        for f in dataclasses.fields(cls)
        if f.init
    }


def _parse(strategy: str, name: str, kind: type, value: str | float) -> float | int:
    wrong = ValueError(f"{strategy}: {name} must be {kind.__name__}, got {str(value)[:50]!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise wrong
    if isinstance(value, str) and len(value) > MAX_VALUE_TEXT:
        raise ValueError(f"{strategy}: {name} is {len(value)} characters long; a number has "
                         f"at most {MAX_VALUE_TEXT}")
    if isinstance(value, int) and abs(value) > MAX_VALUE_INT:
        raise ValueError(f"{strategy}: {name} is out of range: {len(str(abs(value)))} digits")
    try:
        parsed = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise wrong from None
    # int(2.7) would silently truncate a float that was meant as a count.
    if kind is int and not isinstance(value, str) and parsed != value:
        raise ValueError(f"{strategy}: {name} must be {kind.__name__}, got {value!r}")
    return parsed


def build_strategy(name: str, params: Mapping[str, str | float]) -> Strategy:
    """Build a strategy; raises ValueError naming the problem for any bad name or value.

    Each value is parsed with bounded text and magnitude, then checked against its declared
    Bounds before the strategy is built (building may allocate per level)."""
    declared = strategy_params(name)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        valid = ", ".join(declared)
        raise ValueError(f"{name}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
    parsed = {key: _parse(name, key, declared[key].type, value) for key, value in params.items()}
    for key, value in parsed.items():
        reason = declared[key].bounds.problem(key, value)
        if reason:
            raise ValueError(f"{name}: {reason}")
    try:
        return STRATEGIES[name](**parsed)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
