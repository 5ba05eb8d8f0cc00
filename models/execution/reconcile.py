"""Compare our books with the venue's: open orders, balances and derivatives' positions.

Pure comparisons; `connectors.execution.reconcile` fetches the venue's side, acts on the
differences and audits every one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from models.accounting import PositionLedger
from models.execution.orders import PENDING, TrackedOrder, VenueOrder

ZERO = Decimal(0)


@dataclass(slots=True)
class OpenOrderDiff:
    unknown: list[VenueOrder] = field(default_factory=list)  # open at the venue, not tracked
    missing: list[TrackedOrder] = field(default_factory=list)  # tracked, not open at the venue
    changed: list[tuple[TrackedOrder, VenueOrder]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.unknown or self.missing or self.changed)


def compare_open_orders(
    tracked: Iterable[TrackedOrder], venue_open: Iterable[VenueOrder], sent_before_ns: int
) -> OpenOrderDiff:
    """Orders sent at or after `sent_before_ns` and still pending may not have arrived yet:
    their absence at the venue is not a difference (yet)."""
    diff = OpenOrderDiff()
    ours = {order.client_order_id: order for order in tracked}
    for seen in venue_open:
        order = ours.pop(seen.client_order_id, None)
        if order is None:
            diff.unknown.append(seen)
        elif seen.filled != order.filled or (
            # An amend on its way makes the venue's price and amount old news, not a difference.
            order.amend_from is None and (seen.price, seen.amount) != (order.price, order.amount)
        ):
            diff.changed.append((order, seen))
    diff.missing.extend(
        order for order in ours.values()
        if order.status != PENDING or order.sent_ts < sent_before_ns
    )
    return diff


def expected_balances(
    initial: Mapping[str, Decimal], ledgers: Iterable[PositionLedger],
    *, futures_account: bool = False,
) -> dict[str, Decimal]:
    """Cash per currency implied by the starting balances and our fills and fees.

    Spot (and every instrument when `futures_account` is False, as on the paper venue, whose
    books are cash flows: connectors/paper/balances.py): base moves by the position and quote
    by −Σ signed price·size − fees, which is realized − open_cost − fees
    (models/accounting.py keeps that identity exact).

    On a futures account (`futures_account`, a live venue) a derivative holds no base asset
    and opening it costs no cash: only the wallet of its settlement currency moves, by
    realized PnL − fees (the quote for USD-M linear contracts, the coin for COIN-M inverse
    ones; the ledger counts both in that currency). That is the venue's wallet balance, not
    its margin balance, which adds the unrealized PnL at the venue's mark price.

    A USD-M long of 0.003 BTC at 60000, 0.001 of it closed at 60100, 0.02 USDT fees in all:

    >>> from models.events import Fill
    >>> from models.instrument import Instrument
    >>> def fill(instrument, side, price, size, fee):
    ...     return Fill(venue=instrument.venue, symbol=instrument.symbol, ts=0,
    ...                 client_order_id="c", trade_id=f"{side}{price}", side=side,
    ...                 price=Decimal(price), size=Decimal(size), fee=Decimal(fee),
    ...                 fee_currency=instrument.fee_currency, liquidity="maker")
    >>> linear = Instrument(venue="binanceusdm", symbol="BTC/USDT:USDT", base="BTC",
    ...                     quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
    ...                     step_size=Decimal("0.001"))
    >>> ledger = PositionLedger(linear)
    >>> ledger.apply(fill(linear, "buy", "60000", "0.003", "0.015"))
    >>> ledger.apply(fill(linear, "sell", "60100", "0.001", "0.005"))
    >>> expected_balances({"USDT": Decimal(1000)}, [ledger], futures_account=True)
    {'USDT': Decimal('1000.0800')}

    A COIN-M long of 2 contracts of 100 USD at 50000, closed at 62500 (0.0008 BTC realized),
    0.0000002 BTC fees: the coin wallet moves, the USD quote does not appear.

    >>> inverse = Instrument(venue="binancecoinm", symbol="BTC/USD:BTC", base="BTC",
    ...                      quote="USD", settle="BTC", inverse=True,
    ...                      contract_size=Decimal(100), tick_size=Decimal("0.1"),
    ...                      step_size=Decimal(1))
    >>> ledger = PositionLedger(inverse)
    >>> ledger.apply(fill(inverse, "buy", "50000", "2", "0.0000001"))
    >>> ledger.apply(fill(inverse, "sell", "62500", "2", "0.0000001"))
    >>> expected_balances({"BTC": Decimal(1)}, [ledger], futures_account=True)
    {'BTC': Decimal('1.000799800000')}
    """
    balances = dict(initial)
    for ledger in ledgers:
        instrument = ledger.instrument
        if futures_account and instrument.is_contract:
            settle = instrument.settle_currency
            wallet = ledger.realized_pnl - ledger.fees
            balances[settle] = balances.get(settle, ZERO) + wallet
            continue
        base, quote = instrument.base, instrument.quote
        balances[base] = balances.get(base, ZERO) + ledger.quantity
        cash = ledger.realized_pnl - ledger.open_cost - ledger.fees
        balances[quote] = balances.get(quote, ZERO) + cash
    return balances


def compare_balances(
    expected: Mapping[str, Decimal], actual: Mapping[str, Decimal]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Currencies whose totals differ: {currency: (expected, at the venue)}."""
    return {
        currency: (expected.get(currency, ZERO), actual.get(currency, ZERO))
        for currency in sorted(expected.keys() | actual.keys())
        if expected.get(currency, ZERO) != actual.get(currency, ZERO)
    }


def compare_positions(
    ledgers: Iterable[PositionLedger], venue_positions: Mapping[str, Decimal]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Derivatives whose signed contracts differ: {symbol: (our ledger's, the venue's)}.

    `venue_positions` is the venue's signed contracts per symbol (a symbol it does not list
    is flat). Spot ledgers are not positions the venue keeps: their base balance is compared
    by `compare_balances`.

    >>> from models.instrument import Instrument
    >>> perp = Instrument(venue="binanceusdm", symbol="BTC/USDT:USDT", base="BTC",
    ...                   quote="USDT", settle="USDT", tick_size=Decimal("0.1"),
    ...                   step_size=Decimal("0.001"))
    >>> compare_positions([PositionLedger(perp)], {"BTC/USDT:USDT": Decimal("-0.002")})
    {'BTC/USDT:USDT': (Decimal('0'), Decimal('-0.002'))}
    >>> compare_positions([PositionLedger(perp)], {})
    {}
    """
    differences = {}
    for ledger in ledgers:
        instrument = ledger.instrument
        if not instrument.is_contract:
            continue
        theirs = venue_positions.get(instrument.symbol, ZERO)
        if theirs != ledger.quantity:
            differences[instrument.symbol] = (ledger.quantity, theirs)
    return differences
