"""Position and PnL of one instrument from its fills, at average cost, exactly in Decimal.

Amounts are in the instrument's settlement currency. A fill's signed cost is its settlement
value (`Instrument.settle_value`) signed by side, and negated for inverse contracts, whose
value in coin falls as the price rises:
- linear (spot, USD-M): cost = ±price·size·contract_size;
- inverse (COIN-M): cost = ∓size·contract_size/price (rounded to the instrument's
  `value_quantum`), so closing long n contracts bought at p0 and sold at p1 realizes
  n·contract_size·(1/p0 − 1/p1) coin.

The ledger keeps the open position's signed cost (`open_cost` = Σ cost of the units still
open) instead of an average price, so no division enters the books except when a partial
close releases its share of that cost (or splits a fill's cost between the closing and the
opening part); shares are rounded to the value grid and whatever the rounding leaves stays in
`open_cost`, so

    realized − open_cost == −Σ signed cost                 (always, exactly)

and with unrealized(mark) = cost of the position at mark − open_cost the cash-flow identity
realized + unrealized(mark) − fees == −Σ signed cost − Σ fees + cost(quantity, mark) holds
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
        # Every fill's cost lies on this grid; released cost is rounded onto it.
        self._cost_quantum = instrument.value_quantum
        self.quantity = ZERO
        self.open_cost = ZERO
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.volume = ZERO

    @property
    def average_price(self) -> Decimal | None:
        """For display: the books never divide by it (inverse: the harmonic mean)."""
        if not self.quantity or not self.open_cost:
            return None
        instrument = self.instrument
        if instrument.inverse:
            return -self.quantity * instrument.contract_size / self.open_cost
        return self.open_cost / (self.quantity * instrument.contract_size)

    def cost(self, price: Decimal, signed_size: Decimal) -> Decimal:
        """The signed cost of buying `signed_size` (selling when negative) at `price`."""
        value = self.instrument.settle_value(price, abs(signed_size))
        if self.instrument.inverse:
            value = -value
        return value if signed_size > 0 else -value

    def apply(self, fill: Fill) -> None:
        instrument = self.instrument
        if fill.venue != instrument.venue or fill.symbol != instrument.symbol:
            raise ValueError(f"fill for {fill.venue}:{fill.symbol} in the {instrument.key} ledger")
        if fill.fee_currency != instrument.fee_currency:
            raise ValueError(
                f"fee in {fill.fee_currency}, the ledger counts {instrument.fee_currency}"
            )
        if fill.size <= 0 or fill.price <= 0:
            raise ValueError(f"fill {fill.trade_id} has size {fill.size} at price {fill.price}")
        signed = fill.size if fill.side == "buy" else -fill.size
        cost = self.cost(fill.price, signed)
        quantity = self.quantity
        self.fees += fill.fee
        self.volume += instrument.notional(fill.price, fill.size)
        if not quantity or (quantity > 0) == (signed > 0):
            self.open_cost += cost
            self.quantity = quantity + signed
            return
        closing = min(fill.size, abs(quantity))
        released = self._share(self.open_cost, closing, abs(quantity))
        closing_cost = self._share(cost, closing, fill.size)
        self.realized_pnl += -closing_cost - released
        self.open_cost -= released
        # Whatever goes past zero opens a position the other way at the fill price.
        self.open_cost += cost - closing_cost
        self.quantity = quantity + signed

    def _share(self, amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
        if part == whole:
            return amount
        return (amount * part / whole).quantize(self._cost_quantum, ROUND_HALF_EVEN)

    def unrealized(self, mark: Decimal) -> Decimal:
        if not self.quantity:
            return -self.open_cost
        return self.cost(mark, self.quantity) - self.open_cost

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
