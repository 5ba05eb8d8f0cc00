"""An instrument's trading rules, the exact rounding of orders onto its grid, and its units.

Sizes are in the venue's order units: base currency for spot, contracts for derivatives
(`contract_size` base units each for linear contracts, `contract_size` quote units, e.g.
10 USD, for inverse ones). Prices are always quote per base. PnL and fees are in the
settlement currency: the quote for spot and linear contracts, the base coin for inverse.

The rules come from ccxt's market structure (`instrument_from_market`); the connector
`connectors.venues.markets` reads them from the cached files.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import msgspec

from models.events import Side


class InstrumentRuleError(ValueError):
    """An order that the venue's filters would reject; `code` is a stable reason code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0004")
    # A sensible quote size when the user names none: a few times the minimum notional.
    default_order_size: Decimal = Decimal(1)
    # Base units (linear) or quote units (inverse) of one contract; 1 for spot.
    contract_size: Decimal = Decimal(1)
    inverse: bool = False
    # The currency PnL and fees are counted in; None means the quote currency.
    settle: str | None = None

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    @property
    def is_contract(self) -> bool:
        """A derivative (perpetual or future): it has a settlement currency, spot has none."""
        return self.settle is not None

    @property
    def settle_currency(self) -> str:
        return self.settle or self.quote

    @property
    def fee_currency(self) -> str:
        return self.settle_currency

    @property
    def value_quantum(self) -> Decimal:
        """The grid settlement values lie on: exact for linear (price·size·contract size),
        SETTLE_QUANTUM for inverse, whose values (size·contract size / price) divide."""
        if self.inverse:
            return SETTLE_QUANTUM
        return (self.tick_size * self.step_size * self.contract_size).normalize()

    def notional(self, price: Decimal, size: Decimal) -> Decimal:
        """In the quote currency: what risk limits and minimum notionals are stated in."""
        if self.inverse:
            return size * self.contract_size
        return price * size * self.contract_size

    def settle_value(self, price: Decimal, size: Decimal) -> Decimal:
        """`size` at `price` in the settlement currency (what fees are charged on).

        Inverse: size·contract_size/price, rounded half-even to SETTLE_QUANTUM, so every
        amount the books add up is exact and the same wherever it is computed.
        """
        if self.inverse:
            return (size * self.contract_size / price).quantize(SETTLE_QUANTUM, ROUND_HALF_EVEN)
        return price * size * self.contract_size

    def fee(self, price: Decimal, size: Decimal, liquidity: str) -> Decimal:
        rate = self.maker_fee if liquidity == "maker" else self.taker_fee
        return self.settle_value(price, size) * rate

    def round_price(self, price: float | Decimal, side: Side) -> Decimal:
        """Onto the tick grid, away from the market: bids down, asks up.

        Rounding away from the touch never makes a quote more aggressive than the model asked.
        `str()` first, because `Decimal(float)` would carry the float's binary expansion.
        """
        value = price if isinstance(price, Decimal) else Decimal(repr(float(price)))
        rounding = ROUND_FLOOR if side == "buy" else ROUND_CEILING
        return (value / self.tick_size).to_integral_value(rounding) * self.tick_size

    def round_size(self, size: float | Decimal) -> Decimal:
        """Down onto the step grid: never more than asked."""
        value = size if isinstance(size, Decimal) else Decimal(repr(float(size)))
        return (value / self.step_size).to_integral_value(ROUND_FLOOR) * self.step_size

    def validate(self, price: Decimal | None, size: Decimal) -> None:
        """Raise InstrumentRuleError with a reason code when the venue would reject."""
        if size <= 0:
            raise InstrumentRuleError("INVALID_SIZE", f"size {size} must be positive")
        if size % self.step_size != 0:
            raise InstrumentRuleError(
                "STEP_SIZE", f"size {size} is not a multiple of {self.step_size}"
            )
        if size < self.min_qty:
            raise InstrumentRuleError("MIN_QTY", f"size {size} is below the minimum {self.min_qty}")
        if price is None:
            return
        if price <= 0:
            raise InstrumentRuleError("INVALID_PRICE", f"price {price} must be positive")
        if price % self.tick_size != 0:
            raise InstrumentRuleError(
                "TICK_SIZE", f"price {price} is not a multiple of {self.tick_size}"
            )
        notional = self.notional(price, size)
        if notional < self.min_notional:
            raise InstrumentRuleError(
                "MIN_NOTIONAL", f"notional {notional} is below the minimum {self.min_notional}"
            )


# Inverse values (coin per contract) divide by the price: they are kept to 1e-12 coin, four
# digits finer than the 1e-8 exchanges report balances in.
SETTLE_QUANTUM = Decimal("1e-12")

# ccxt's precision modes (ccxt.base.decimal_to_precision): the market's precision numbers
# are either the tick itself or a count of decimal places.
CCXT_DECIMAL_PLACES = 2
CCXT_TICK_SIZE = 4


def instrument_from_market(
    venue: str,
    market: Mapping,
    *,
    precision_mode: int = CCXT_TICK_SIZE,
    default_order_size: Decimal | None = None,
) -> Instrument:
    """An Instrument from one ccxt unified market structure (`exchange.markets[symbol]`).

    Numbers may be floats, ints, strings or Decimals (the cache is read with Decimal floats).
    Raises InstrumentRuleError("BAD_MARKET", ...) when a rule the grid needs is missing.
    """
    symbol = market.get("symbol")
    try:
        if not (symbol and market.get("base") and market.get("quote")):
            raise ValueError("symbol, base and quote are required")
        precision = market.get("precision") or {}
        tick = _grid(precision.get("price"), precision_mode)
        step = _grid(precision.get("amount"), precision_mode)
        limits = market.get("limits") or {}
        min_qty = _number((limits.get("amount") or {}).get("min")) or Decimal(0)
        min_notional = _number((limits.get("cost") or {}).get("min")) or Decimal(0)
        contract = bool(market.get("contract"))
        contract_size = _number(market.get("contractSize")) if contract else None
        inverse = bool(market.get("inverse")) and contract
        fields = dict(
            venue=venue, symbol=symbol, base=market["base"], quote=market["quote"],
            tick_size=tick, step_size=step, min_qty=min_qty, min_notional=min_notional,
            maker_fee=_number(market.get("maker")) or Decimal(0),
            taker_fee=_number(market.get("taker")) or Decimal(0),
            contract_size=contract_size or Decimal(1),
            inverse=inverse,
            settle=market.get("settle") if contract else None,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise InstrumentRuleError("BAD_MARKET", f"{venue}:{symbol}: {exc}") from None
    if default_order_size is None:
        default_order_size = max(step, min_qty)
    return Instrument(**fields, default_order_size=default_order_size)


def _number(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)  # the float's shortest text, not its binary expansion
    return Decimal(value)


def _grid(value, precision_mode: int) -> Decimal:
    number = _number(value)
    if number is None:
        raise ValueError("no precision")
    if precision_mode == CCXT_DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(number))
    if precision_mode != CCXT_TICK_SIZE:
        raise ValueError(f"unsupported ccxt precision mode {precision_mode}")
    if number <= 0:
        raise ValueError(f"grid {number} must be positive")
    return number


