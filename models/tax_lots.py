"""Tax lots and realized gains from fills: FIFO, LIFO, HIFO and average cost, exactly.

Lots are kept per book: (owner, account, venue, symbol). An instrument is its own book
because its amounts are in its own settlement currency (BTC bought for USDT and BTC bought
for USDC have bases in different currencies). Fills are taken in time order, fills of one
nanosecond in the order of their trade ids, numbers compared as numbers (paper-9 before
paper-10), so the same fills give the same lots from a file or from the database.

Every amount is the *cash* a fill moved, in the settlement currency, fee included:
`cash = −(signed cost of the fill) − fee`, with the signed cost of `PositionLedger.cost`
(price · size · contract size for spot and linear contracts; for inverse contracts the
ledger's coin cost, so closing them realizes size · contract size · (1/p0 − 1/p1) coin).
A buy's fee adds to the lot's cost basis, a sell's fee comes off its proceeds.

- A lot is what one fill opened: a long lot (a buy, cash < 0: its cost basis is −cash) or,
  when a sell goes past what is held (perpetuals, margin), a short lot (cash > 0: the sale's
  proceeds). A fill first closes lots of the other side, matched by the method; whatever is
  left opens a lot of its own. A short lot's "acquired" date is the day it was sold short.
- Realized gain of a disposal = the cash of the closed part of the lot + the cash of the part
  of the closing fill that closed it (proceeds − cost basis, for longs and shorts alike).
- Splitting divides: a part's cash is `cash · part / whole`, rounded half-even to
  `CASH_QUANTUM` (1e-18), and whatever the rounding leaves stays with the rest (the last
  part takes all that is left); a share is computed to 60 significant digits before it is
  rounded. Hence, for every method, exactly:

      Σ cash of the fills == Σ realized gains + Σ cash of the open lots

- Methods: `fifo` closes the oldest lot first; `lifo` the newest; `hifo` the lot whose units
  brought the least cash (the highest cost per unit of a long lot, the lowest proceeds per
  unit of a short one: the smallest gain), the oldest on a tie; `average` pools each book:
  a disposal releases the pool's cash pro rata, and its dates are taken first in first out
  (as the US average-cost method for fund shares does).
- Fee currency: the settlement currency is cash. A fee in the base currency (spot: Binance
  charges a buy's fee in the coin bought) changes the quantity instead: a buy receives
  size − fee, a sell gives size + fee. Any other fee currency (BNB, ...) has no price
  here and is refused (`TaxLotError`); a zero fee in any currency is ignored.
- Holding period: whole UTC calendar days from acquisition to disposal; `long` term when
  more than 365 days (the US one-year rule; other jurisdictions differ, and short sales
  are often short term whatever their length: the days are in every row to apply that).

>>> from models.events import Fill
>>> from models.instrument import Instrument
>>> btc = Instrument(venue="x", symbol="BTC/USD", base="BTC", quote="USD",
...                  tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
>>> def fill(day, side, price, size, fee="0"):
...     return Fill(venue="x", symbol="BTC/USD", ts=day * DAY_NS, client_order_id="c",
...                 trade_id=f"t{day}", side=side, price=Decimal(price), size=Decimal(size),
...                 fee=Decimal(fee), fee_currency="USD", liquidity="maker")
>>> fills = [("ann", "main", f) for f in (fill(0, "buy", "100", "1", "1"),
...          fill(10, "buy", "200", "1"), fill(400, "sell", "300", "1.5", "3"))]
>>> for d in tax_lots(fills, "fifo", lambda v, s: btc).disposals:
...     print(d.quantity, d.cost_basis, d.proceeds, d.gain, d.holding_days, d.term)
1 101 298 197 400 long
0.5 100.0 149.0 49.0 390 long
>>> [str(d.gain) for d in tax_lots(fills, "hifo", lambda v, s: btc).disposals]
['98', '98.5']
>>> [str(lot.cash) for lot in tax_lots(fills, "average", lambda v, s: btc).open_lots]
['-75.25']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from models.accounting import PositionLedger
from models.events import Fill
from models.instrument import Instrument

METHODS = ("fifo", "lifo", "hifo", "average")
CASH_QUANTUM = Decimal("1e-18")
DAY_NS = 86_400 * 10**9
LONG_TERM_DAYS = 365
ZERO = Decimal(0)

Book = tuple[str, str, str, str]  # owner, account, venue, symbol


class TaxLotError(ValueError):
    """Fills that cannot be put into lots (an unknown method, a fee with no price)."""


@dataclass
class Lot:
    book: Book
    currency: str
    quantity: Decimal  # signed: > 0 long, < 0 short; what is still open
    cash: Decimal  # the open part's cash: < 0 (cost basis) long, > 0 (proceeds) short
    ts: int
    trade_id: str


@dataclass(frozen=True)
class Disposal:
    book: Book
    currency: str
    position: str  # "long" or "short"
    quantity: Decimal
    acquired_ts: int
    disposed_ts: int
    acquisition_trade_id: str
    disposal_trade_id: str
    cost_basis: Decimal
    proceeds: Decimal

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.cost_basis

    @property
    def holding_days(self) -> int:
        return (_date(self.disposed_ts) - _date(self.acquired_ts)).days

    @property
    def term(self) -> str:
        return "long" if self.holding_days > LONG_TERM_DAYS else "short"


@dataclass
class TaxLots:
    disposals: list[Disposal] = field(default_factory=list)
    open_lots: list[Lot] = field(default_factory=list)
    cash_flow: dict[Book, Decimal] = field(default_factory=dict)  # Σ cash of the fills


def tax_lots(
    fills: Iterable[tuple[str, str, Fill]],
    method: str,
    instrument: Callable[[str, str], Instrument],
) -> TaxLots:
    """Lots and disposals of `(owner, account, fill)` triples; `instrument(venue, symbol)`."""
    if method not in METHODS:
        raise TaxLotError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    result = TaxLots()
    books: dict[Book, list[Lot]] = {}
    with localcontext() as context:
        context.prec = 60  # far above any amount's digits: no product or share is inexact
        for owner, account, fill in sorted(fills, key=lambda item: _order(item[2])):
            book = (owner, account, fill.venue, fill.symbol)
            rules = instrument(fill.venue, fill.symbol)
            quantity, cash = _signed_quantity_and_cash(fill, rules)
            result.cash_flow[book] = result.cash_flow.get(book, ZERO) + cash
            lots = books.setdefault(book, [])
            currency = rules.settle_currency
            while quantity and lots and (lots[0].quantity > 0) != (quantity > 0):
                lot = _pick(lots, method)
                take = min(abs(quantity), abs(lot.quantity))
                released = _release(lots, lot, take, method)
                closing = _share(cash, take, abs(quantity))
                quantity += take if quantity < 0 else -take
                cash -= closing
                opening_cost, closing_cost = -released, -closing
                result.disposals.append(Disposal(
                    book, currency, "long" if lot.quantity > 0 else "short", take, lot.ts,
                    fill.ts, lot.trade_id, fill.trade_id,
                    cost_basis=opening_cost if lot.quantity > 0 else closing_cost,
                    proceeds=closing if lot.quantity > 0 else released,
                ))
                lot.quantity += -take if lot.quantity > 0 else take
                if not lot.quantity:
                    lots.remove(lot)
            if quantity:
                lots.append(Lot(book, currency, quantity, cash, fill.ts, fill.trade_id))
        for lots in books.values():
            result.open_lots.extend(lots)
    return result


def _signed_quantity_and_cash(fill: Fill, rules: Instrument) -> tuple[Decimal, Decimal]:
    sign = 1 if fill.side == "buy" else -1
    cash = -PositionLedger(rules).cost(fill.price, sign * fill.size)
    quantity = sign * fill.size
    if not fill.fee:
        return quantity, cash
    if fill.fee_currency == rules.settle_currency:
        return quantity, cash - fill.fee
    if fill.fee_currency == rules.base and not rules.inverse:
        return quantity - fill.fee, cash
    raise TaxLotError(
        f"fill {fill.trade_id} of {fill.venue}:{fill.symbol} pays its fee in "
        f"{fill.fee_currency}, neither {rules.settle_currency} nor {rules.base}: "
        "it has no price here"
    )


def _pick(lots: list[Lot], method: str) -> Lot:
    if method == "lifo":
        return lots[-1]
    if method == "hifo":  # least cash per unit; cross-multiplied, so nothing divides
        best = lots[0]
        for lot in lots[1:]:
            if lot.cash * abs(best.quantity) < best.cash * abs(lot.quantity):
                best = lot
        return best
    return lots[0]  # fifo, and average's dates


def _release(lots: list[Lot], lot: Lot, take: Decimal, method: str) -> Decimal:
    """The cash of `take` units of `lot`, taken off it (average: off the whole pool)."""
    if method != "average":
        released = _share(lot.cash, take, abs(lot.quantity))
        lot.cash -= released
        return released
    pool_cash = sum((other.cash for other in lots), ZERO)
    pool_quantity = sum((abs(other.quantity) for other in lots), ZERO)
    released = _share(pool_cash, take, pool_quantity)
    # Spread the pool's new cash over its lots by quantity, so each open lot shows its
    # share and the pool stays the sum of its lots.
    remaining_cash, remaining_quantity = pool_cash - released, pool_quantity - take
    for other in lots:
        units = abs(other.quantity) - (take if other is lot else 0)
        other.cash = _share(remaining_cash, units, remaining_quantity) if units else ZERO
        remaining_cash -= other.cash
        remaining_quantity -= units
    return released


def _share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    if part == whole:
        return amount
    exact = amount * part / whole
    rounded = exact.quantize(CASH_QUANTUM, ROUND_HALF_EVEN)
    return exact if exact == rounded else rounded  # keeps an exact share's own digits


def _order(fill: Fill) -> tuple:
    parts = re.split(r"(\d+)", fill.trade_id)
    return fill.ts, [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _date(ts: int):
    return datetime.fromtimestamp(ts / 1e9, UTC).date()
