"""Risk limits: a typed configuration parsed and validated from plain data.

The same parser reads a `[risk]` TOML table, environment overrides and the `params` of a
`set_limits` control command, so a limit means the same thing wherever it comes from.
Every limit is optional: absent (or `"none"`/`"off"`) means the check is off. Money and
sizes are `Decimal` (quote currency and base units), counts and ages integers.

Layout of the data:

    {"max_total_position": "250000", "daily_loss_limit": "1000", ...,   # account-wide
     "max_position": "0.5", "price_band_bps": "50", ...,                 # every instrument
     "instruments": {"binanceusdm:BTC/USDT:USDT": {"max_position": "0.1"}}}  # overrides

An instrument override replaces only the keys it names, so a later change of a default
still reaches the instruments that do not override it. Parsing builds a new immutable
`RiskLimits` or raises `LimitsError`: an update is applied whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

_DISABLED = frozenset({"none", "off"})


class LimitsError(ValueError):
    """Limits that cannot be used; the message names the key and the value at fault."""


@dataclass(frozen=True, slots=True)
class InstrumentLimits:
    """Limits that apply to each instrument on its own."""

    max_order_size: Decimal | None = None  # base units
    max_order_notional: Decimal | None = None  # quote currency
    max_position: Decimal | None = None  # |position| in base units, working orders included
    max_open_orders: int | None = None
    price_band_bps: Decimal | None = None  # around the reference mid
    max_data_age_ms: int | None = None  # of the last book update
    min_spread_bps: Decimal | None = None  # between our own bid and ask, of the mid
    stop_loss: Decimal | None = None  # unrealized loss (quote) that sends it to REDUCING
    max_slippage_bps: Decimal | None = None  # of a taker order, from the touch


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Account-wide limits, per-instrument defaults and per-instrument overrides."""

    defaults: InstrumentLimits = InstrumentLimits()
    overrides: Mapping[str, Mapping[str, object]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    max_total_position: Decimal | None = None  # Σ |position| · mid over instruments (quote)
    max_order_rate: int | None = None  # accepted orders per window, all instruments
    order_rate_window_ms: int = 1000
    daily_loss_limit: Decimal | None = None  # quote currency, since 00:00 UTC
    max_drawdown: Decimal | None = None  # quote currency, from the peak of PnL
    _resolved: Mapping[str, InstrumentLimits] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Resolved once here so the hot path is a single dict lookup per order.
        resolved = {key: replace(self.defaults, **diff) for key, diff in self.overrides.items()}
        object.__setattr__(self, "_resolved", resolved)

    def for_instrument(self, key: str) -> InstrumentLimits:
        return self._resolved.get(key, self.defaults)

    def updated(self, target: str, changes: Mapping[str, object]) -> RiskLimits:
        """New limits with `changes` applied to `target` (`*` or `venue:symbol`).

        `*` changes account-wide limits and the per-instrument defaults; an instrument
        target changes that instrument's overrides only.
        """
        if not changes:
            raise LimitsError("no limits given to change")
        if target == "*":
            return _parse_top(changes, base=self)
        if ":" not in target:
            raise LimitsError(f"limits target {target!r} must be '*' or 'venue:symbol'")
        instrument_changes = _parse_instrument(changes, where=f"{target}.")
        overrides = dict(self.overrides)
        overrides[target] = MappingProxyType({**overrides.get(target, {}), **instrument_changes})
        return replace(self, overrides=MappingProxyType(overrides))


def parse_limits(raw: Mapping[str, object]) -> RiskLimits:
    """Limits from plain data (a TOML table, env-overlaid dict); raises LimitsError."""
    if not isinstance(raw, Mapping):
        raise LimitsError(f"risk limits must be a table, got {type(raw).__name__}")
    instruments = raw.get("instruments", {})
    if not isinstance(instruments, Mapping):
        raise LimitsError("instruments must be a table of 'venue:symbol' = {limits}")
    limits = _parse_top({k: v for k, v in raw.items() if k != "instruments"}, base=RiskLimits())
    for key, changes in instruments.items():
        if not isinstance(changes, Mapping):
            raise LimitsError(f"instruments.{key} must be a table of limits")
        limits = limits.updated(str(key), changes) if changes else limits
    return limits


def _parse_top(changes: Mapping[str, object], base: RiskLimits) -> RiskLimits:
    account: dict[str, object] = {}
    instrument: dict[str, object] = {}
    for key, value in changes.items():
        if key in _ACCOUNT_PARSERS:
            account[key] = _ACCOUNT_PARSERS[key](key, value)
        elif key in _INSTRUMENT_PARSERS:
            instrument[key] = _INSTRUMENT_PARSERS[key](key, value)
        else:
            raise LimitsError(f"unknown risk limit {key!r}; known: {_KNOWN}")
    return replace(base, defaults=replace(base.defaults, **instrument), **account)


def _parse_instrument(changes: Mapping[str, object], where: str) -> dict[str, object]:
    parsed = {}
    for key, value in changes.items():
        parser = _INSTRUMENT_PARSERS.get(key)
        if parser is None:
            raise LimitsError(
                f"{where}{key} is not a per-instrument limit; known: {sorted(_INSTRUMENT_PARSERS)}"
            )
        parsed[key] = parser(f"{where}{key}", value)
    return parsed


def _number(name: str, value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise LimitsError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str) and value.strip().lower() in _DISABLED:
        return None
    try:
        # repr() of a float is its shortest exact-looking form: 0.1, not 0.1000000000000000055…
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise LimitsError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise LimitsError(f"{name} must be finite, got {value!r}")
    return number


def _positive_decimal(name: str, value: object) -> Decimal | None:
    number = _number(name, value)
    if number is not None and number <= 0:
        raise LimitsError(f"{name} must be > 0, got {value!r}")
    return number


def _non_negative_decimal(name: str, value: object) -> Decimal | None:
    number = _number(name, value)
    if number is not None and number < 0:
        raise LimitsError(f"{name} must be >= 0, got {value!r}")
    return number


def _positive_int(name: str, value: object) -> int | None:
    number = _number(name, value)
    if number is None:
        return None
    if number <= 0 or number != number.to_integral_value():
        raise LimitsError(f"{name} must be a whole number > 0, got {value!r}")
    return int(number)


def _required(parser: Callable[[str, object], object]) -> Callable[[str, object], object]:
    def parse(name: str, value: object) -> object:
        parsed = parser(name, value)
        if parsed is None:
            raise LimitsError(f"{name} cannot be turned off")
        return parsed

    return parse


_INSTRUMENT_PARSERS: dict[str, Callable[[str, object], object]] = {
    "max_order_size": _positive_decimal,
    "max_order_notional": _positive_decimal,
    "max_position": _non_negative_decimal,
    "max_open_orders": _positive_int,
    "price_band_bps": _positive_decimal,
    "max_data_age_ms": _positive_int,
    "min_spread_bps": _non_negative_decimal,
    "stop_loss": _positive_decimal,
    "max_slippage_bps": _non_negative_decimal,
}
_ACCOUNT_PARSERS: dict[str, Callable[[str, object], object]] = {
    "max_total_position": _non_negative_decimal,
    "max_order_rate": _positive_int,
    "order_rate_window_ms": _required(_positive_int),
    "daily_loss_limit": _positive_decimal,
    "max_drawdown": _positive_decimal,
}
_KNOWN = sorted([*_ACCOUNT_PARSERS, *_INSTRUMENT_PARSERS, "instruments"])
