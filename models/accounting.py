"""Position and PnL of one instrument from its fills, at average cost, exactly in Decimal.

The ledger keeps the open position's signed cost (`open_cost` = Σ price·size of the units
still open, negative for a short) instead of an average price, so no division ever enters
the books except when a partial close releases its share of that cost; that share is
rounded to the price·size grid and whatever the rounding leaves stays in `open_cost`, so

    realized − open_cost == −Σ signed price·size          (always, exactly)

and with unrealized(mark) = quantity·mark − open_cost the cash-flow identity
realized + unrealized(mark) − fees == −Σ signed price·size − Σ fees + quantity·mark holds
to the last digit. docs/pnl.md states the conventions.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from models.events import Fill, Position
from models.instrument import Instrument

ZERO = Decimal(0)


class PositionLedger:
    __slots__ = ("_cost_quantum", "fees", "instrument", "open_cost", "quantity", "realized_pnl",
                 "volume")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        # Every price·size lies on the tick·step grid; released cost is rounded onto it.
        self._cost_quantum = (instrument.tick_size * instrument.step_size).normalize()
        self.quantity = ZERO
        self.open_cost = ZERO
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.volume = ZERO

    @property
    def average_price(self) -> Decimal | None:
        """For display: the books never divide by it."""
        return self.open_cost / self.quantity if self.quantity else None

    def apply(self, fill: Fill) -> None:
        instrument = self.instrument
        if fill.venue != instrument.venue or fill.symbol != instrument.symbol:
            raise ValueError(f"fill for {fill.venue}:{fill.symbol} in the {instrument.key} ledger")
        if fill.fee_currency != instrument.quote:
            raise ValueError(f"fee in {fill.fee_currency}, the ledger counts {instrument.quote}")
        if fill.size <= 0 or fill.price <= 0:
            raise ValueError(f"fill {fill.trade_id} has size {fill.size} at price {fill.price}")
        signed = fill.size if fill.side == "buy" else -fill.size
        quantity = self.quantity
        self.fees += fill.fee
        self.volume += fill.price * fill.size
        if not quantity or (quantity > 0) == (signed > 0):
            self.open_cost += signed * fill.price
            self.quantity = quantity + signed
            return
        closing = min(fill.size, abs(quantity))
        if closing == abs(quantity):
            released = self.open_cost
        else:
            released = (self.open_cost * closing / abs(quantity)).quantize(
                self._cost_quantum, ROUND_HALF_EVEN
            )
        closing_signed = closing if signed > 0 else -closing
        self.realized_pnl += -closing_signed * fill.price - released
        self.open_cost -= released
        # Whatever goes past zero opens a position the other way at the fill price.
        opening = signed - closing_signed
        self.open_cost += opening * fill.price
        self.quantity = quantity + signed

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.quantity * mark - self.open_cost

    def position(self, ts: int, mark: Decimal | None) -> Position:
        instrument = self.instrument
        return Position(
            venue=instrument.venue,
            symbol=instrument.symbol,
            ts=ts,
            quantity=self.quantity,
            average_price=self.average_price,
            realized_pnl=self.realized_pnl,
            unrealized_pnl=self.unrealized(mark) if mark is not None else ZERO,
            fees=self.fees,
            mark_price=mark,
        )
