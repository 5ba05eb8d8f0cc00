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


@dataclass(frozen=True, slots=True)
class LimitRange:
    """What a limit's value may be: `kind` (Decimal or int) in (low, high], or [low, high]
    when `low_inclusive`. Declared once per limit in LIMIT_RANGES, the table every parser
    (configuration, API, executor) checks against before converting anything."""

    kind: type
    low: Decimal
    high: Decimal
    low_inclusive: bool = False
    can_be_off: bool = True

    def __str__(self) -> str:
        low = ">=" if self.low_inclusive else ">"
        whole = "a whole number " if self.kind is int else ""
        return f"{whole}{low} {self.low}, <= {self.high:,f}"


# A limit's value as text: 40 characters hold any sensible number, and bounding the text
# and the exponent before converting keeps `int()` cheap (it is quadratic in the exponent:
# "1e1000000" once stalled the API for 26 s).
MAX_VALUE_TEXT = 40
_MAX_EXPONENT = 20
_MONEY = Decimal("1e15")  # quote currency: far above any account
_SIZE = Decimal("1e12")  # base units
_BPS = Decimal(100_000)  # 1000 %
_DAY_MS = Decimal(86_400_000)
_ZERO = Decimal(0)


def _range(kind: type, high: Decimal | int, *, low_inclusive: bool = False,
           can_be_off: bool = True) -> LimitRange:
    return LimitRange(kind, _ZERO, Decimal(high), low_inclusive, can_be_off)


# limit → (account-wide?, range): the single declaration of every limit's type and range.
LIMIT_RANGES: dict[str, tuple[bool, LimitRange]] = {
    "max_order_size": (False, _range(Decimal, _SIZE)),
    "max_order_notional": (False, _range(Decimal, _MONEY)),
    "max_position": (False, _range(Decimal, _SIZE, low_inclusive=True)),
    "max_open_orders": (False, _range(int, 100_000)),
    "price_band_bps": (False, _range(Decimal, _BPS)),
    "max_data_age_ms": (False, _range(int, _DAY_MS)),
    "min_spread_bps": (False, _range(Decimal, _BPS, low_inclusive=True)),
    "stop_loss": (False, _range(Decimal, _MONEY)),
    "max_slippage_bps": (False, _range(Decimal, _BPS, low_inclusive=True)),
    "max_total_position": (True, _range(Decimal, _MONEY, low_inclusive=True)),
    "max_order_rate": (True, _range(int, 1_000_000)),
    "order_rate_window_ms": (True, _range(int, _DAY_MS, can_be_off=False)),
    "daily_loss_limit": (True, _range(Decimal, _MONEY)),
    "max_drawdown": (True, _range(Decimal, _MONEY)),
}


def _number(name: str, value: object) -> Decimal | None:
    """`value` as a Decimal, its text and magnitude bounded before any conversion."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise LimitsError(f"{name} must be a number, got {str(value)[:50]!r}")
    if isinstance(value, str):
        if value.strip().lower() in _DISABLED:
            return None
        if len(value) > MAX_VALUE_TEXT:
            raise LimitsError(f"{name} must be a number of at most {MAX_VALUE_TEXT} characters, "
                              f"got {len(value)}")
    if isinstance(value, int) and value.bit_length() > 128:
        raise LimitsError(f"{name} is out of range: {len(str(abs(value)))} digits")
    try:
        # repr() of a float is its shortest exact-looking form: 0.1, not 0.1000000000000000055…
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise LimitsError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise LimitsError(f"{name} must be finite, got {value!r}")
    if number and abs(number.adjusted()) > _MAX_EXPONENT:
        raise LimitsError(f"{name} is out of range: {number:.3e}")
    return number


def _parser(spec: LimitRange) -> Callable[[str, object], object]:
    def parse(name: str, value: object) -> object:
        number = _number(name, value)
        if number is None:
            if not spec.can_be_off:
                raise LimitsError(f"{name} cannot be turned off")
            return None
        above = number >= spec.low if spec.low_inclusive else number > spec.low
        if spec.kind is int:
            if not above or number != number.to_integral_value():
                raise LimitsError(f"{name} must be {spec}, got {value!r}")
        elif not above:
            low = ">=" if spec.low_inclusive else ">"
            raise LimitsError(f"{name} must be {low} {spec.low}, got {value!r}")
        if number > spec.high:
            raise LimitsError(f"{name} must be <= {spec.high:,f}, got {value!r}")
        return int(number) if spec.kind is int else number

    return parse


_INSTRUMENT_PARSERS: dict[str, Callable[[str, object], object]] = {
    name: _parser(spec) for name, (account, spec) in LIMIT_RANGES.items() if not account
}
_ACCOUNT_PARSERS: dict[str, Callable[[str, object], object]] = {
    name: _parser(spec) for name, (account, spec) in LIMIT_RANGES.items() if account
}
_KNOWN = sorted([*_ACCOUNT_PARSERS, *_INSTRUMENT_PARSERS, "instruments"])
