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
from models.strategies.base import DesiredQuotes, MarketState, QuoteLevel, Strategy
from models.strategies.glft import GLFT
from models.strategies.ladder import Ladder

__all__ = [
    "STRATEGIES",
    "DesiredQuotes",
    "MarketState",
    "Param",
    "QuoteLevel",
    "Strategy",
    "build_strategy",
    "strategy_params",
]

STRATEGIES: dict[str, type] = {
    cls.name: cls for cls in (Ladder, AvellanedaStoikov, AvellanedaStoikovInfinite, GLFT)
}


class Param(NamedTuple):
    type: type
    default: float | int
    help: str


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
        f.name: Param(hints[f.name], f.default, f.metadata["help"])
        for f in dataclasses.fields(cls)
        if f.init
    }


def _parse(strategy: str, name: str, kind: type, value: str | float) -> float | int:
    try:
        parsed = kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{strategy}: {name} must be {kind.__name__}, got {value!r}"
        ) from None
    # int(2.7) would silently truncate a float that was meant as a count.
    if not isinstance(value, str) and parsed != value:
        raise ValueError(f"{strategy}: {name} must be {kind.__name__}, got {value!r}")
    return parsed


def build_strategy(name: str, params: Mapping[str, str | float]) -> Strategy:
    """Build a strategy; raises ValueError naming the problem for any bad name or value."""
    declared = strategy_params(name)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        valid = ", ".join(declared)
        raise ValueError(f"{name}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
    parsed = {key: _parse(name, key, declared[key].type, value) for key, value in params.items()}
    try:
        return STRATEGIES[name](**parsed)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
