"""An instrument's trading rules and the exact rounding of orders onto its grid."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

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

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

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
        if price * size < self.min_notional:
            raise InstrumentRuleError(
                "MIN_NOTIONAL", f"notional {price * size} is below the minimum {self.min_notional}"
            )


# Filters of the recorded Binance instruments (exchangeInfo, August 2024). Fees are the
# VIP 0 rates: spot 0.1%/0.1%, USD-M 0.02% maker / 0.05% taker.
KNOWN_INSTRUMENTS: dict[str, Instrument] = {
    i.key: i
    for i in (
        Instrument(
            venue="binance", symbol="BTC/USDT", base="BTC", quote="USDT",
            tick_size=Decimal("0.01"), step_size=Decimal("0.00001"),
            min_notional=Decimal("5"), maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"),
            default_order_size=Decimal("0.001"),
        ),
        Instrument(
            venue="binance", symbol="ETH/USDT", base="ETH", quote="USDT",
            tick_size=Decimal("0.01"), step_size=Decimal("0.0001"),
            min_notional=Decimal("5"), maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"),
            default_order_size=Decimal("0.01"),
        ),
        Instrument(
            venue="binanceusdm", symbol="BTC/USDT:USDT", base="BTC", quote="USDT",
            tick_size=Decimal("0.10"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
            min_notional=Decimal("100"), maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"),
            default_order_size=Decimal("0.01"),
        ),
        Instrument(
            venue="binanceusdm", symbol="ETH/USDT:USDT", base="ETH", quote="USDT",
            tick_size=Decimal("0.01"), step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
            min_notional=Decimal("20"), maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"),
            default_order_size=Decimal("0.1"),
        ),
        Instrument(
            venue="sim", symbol="SIM/USD", base="SIM", quote="USD",
            tick_size=Decimal("0.01"), step_size=Decimal("1"), min_qty=Decimal("1"),
            maker_fee=Decimal("0"), taker_fee=Decimal("0"),
        ),
    )
}


def instrument_for(venue: str, symbol: str) -> Instrument:
    try:
        return KNOWN_INSTRUMENTS[f"{venue}:{symbol}"]
    except KeyError:
        known = ", ".join(sorted(KNOWN_INSTRUMENTS))
        raise KeyError(f"no trading rules for {venue}:{symbol}; known: {known}") from None
