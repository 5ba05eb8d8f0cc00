"""Reconciliation: ask the venue for open orders, our trades, balances and positions.

Run at start-up and periodically (and on a venue without a push channel, it is how order
changes are seen at all). Every difference is audited as a `reconcile` record naming it:

| difference | what happens |
| --- | --- |
| `UNKNOWN_OPEN_ORDER` | open at the venue, not tracked: adopted (the next diff decides) |
| `ORDER_CHANGED` | filled, price or amount differ: ours take the venue's values |
| `ORDER_NOT_OPEN` | tracked, not open at the venue: its end is looked up and applied |
| `ORDER_LOST` | tracked as pending, unknown to the venue after the arrival grace: rejected |
| `MISSING_FILL` | a trade of ours we had not applied: applied to the position |
| `BALANCE` | a currency's total differs from what our fills imply: the venue's total is kept |
| `POSITION` | a derivative's contracts at the venue differ from our ledger's: risk counts it |

On a venue that holds positions (`Venue.holds_positions`: a live futures account), a
derivative's fills move only the wallet of its settlement currency, by realized PnL − fees,
and that wallet balance (not the margin balance, which adds unrealized PnL at the venue's mark)
is what `BALANCE` compares; its position is the venue's `fetch_positions`. The paper venue
books every fill as a cash flow, so there derivatives are compared as spot, as before.

A `POSITION` difference is audited with both figures but not booked: the venue is the truth
for what we hold, but the ledger is our fills and their prices, and a position that moved
without a trade of ours (a liquidation, ADL, a trade by another client on the account) has no
fill to book; inventing one would make up a price and PnL. Trades of ours are found by
`MISSING_FILL` first, in the same pass. Risk counts the difference until a pass finds none
(`Executor.unbooked`): its position checks see our fills plus what the venue holds beyond
them, while PnL stays our fills'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import ccxt

from connectors.execution.executor import Executor
from models.execution.orders import PENDING
from models.execution.reconcile import (
    compare_balances,
    compare_open_orders,
    compare_positions,
    expected_balances,
)


@dataclass(slots=True)
class ReconcileReport:
    differences: dict[str, int] = field(default_factory=dict)
    balances: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)  # the venue's signed contracts
    error: str | None = None

    def count(self, difference: str) -> None:
        self.differences[difference] = self.differences.get(difference, 0) + 1


async def reconcile(executor: Executor, trades_since_ns: int | None = None) -> ReconcileReport:
    """One pass; a venue that stays unreachable ends it early (audited, in `error`)."""
    report = ReconcileReport()
    executor.audit("reconcile_start", {"trades_since_ns": trades_since_ns})
    try:
        await _orders(executor, report)
        await _trades(executor, report, trades_since_ns)
        await _balances(executor, report)
        await _positions(executor, report)
    except ccxt.BaseError as error:
        report.error = f"{type(error).__name__}: {error}"
        executor.audit("reconcile_failed", {"error": report.error})
    await executor.settle_risk()
    executor.audit("reconcile_end", {"differences": report.differences})
    return report


def _difference(executor: Executor, report: ReconcileReport, kind: str, **payload) -> None:
    report.count(kind)
    executor.audit("reconcile", {"difference": kind, **payload})


async def _orders(executor: Executor, report: ReconcileReport) -> None:
    tracker = executor.tracker
    venue_open = await executor.open_at_venue()
    now = executor.clock()
    diff = compare_open_orders(tracker, venue_open, now - executor.config.arrival_grace_ns)
    for seen in diff.unknown:
        _difference(executor, report, "UNKNOWN_OPEN_ORDER", order=seen)
        executor.adopt(seen)
    for order, seen in diff.changed:
        _difference(executor, report, "ORDER_CHANGED", client_order_id=order.client_order_id,
                    order=seen)
        executor.apply_venue_order(seen, "reconcile")
    for order in diff.missing:
        if tracker.get(order.client_order_id) is None:
            continue  # finished while we were asking
        seen = await executor.lookup(order)
        if seen is not None:
            _difference(executor, report, "ORDER_NOT_OPEN", order=seen)
            executor.apply_venue_order(seen, "reconcile")
        elif order.status == PENDING:
            _difference(executor, report, "ORDER_LOST", client_order_id=order.client_order_id)
            executor.lose(order)


async def _trades(executor: Executor, report: ReconcileReport, since_ns: int | None) -> None:
    venue = executor.venue
    for instrument in executor.instruments.values():
        symbol = instrument.symbol
        fills = await executor.call(
            lambda symbol=symbol: venue.fetch_my_trades(symbol, since_ns), "fetch_my_trades"
        )
        for fill in fills:
            if executor.apply_fill(fill, "reconcile"):
                _difference(executor, report, "MISSING_FILL", fill=fill)


async def _balances(executor: Executor, report: ReconcileReport) -> None:
    venue = executor.venue
    actual = await executor.call(venue.fetch_balance, "fetch_balance")
    expected = expected_balances(
        executor.config.initial_balances, executor.ledgers.values(),
        futures_account=venue.holds_positions,
    )
    report.balances = compare_balances(expected, actual)
    for currency, (ours, theirs) in report.balances.items():
        _difference(executor, report, "BALANCE", currency=currency, expected=ours, venue=theirs)
    executor.balances = actual


async def _positions(executor: Executor, report: ReconcileReport) -> None:
    venue = executor.venue
    ledgers = [ledger for ledger in executor.ledgers.values() if ledger.instrument.is_contract]
    if not venue.holds_positions or not ledgers:
        return
    symbols = [ledger.instrument.symbol for ledger in ledgers]
    try:
        report.positions = await executor.call(
            lambda: venue.fetch_positions(symbols), "fetch_positions"
        )
    except ccxt.NotSupported as error:
        # An exchange ccxt reads no positions from: nothing to compare, the rest of the pass
        # stands (not a failed pass, which would hide the steps after it).
        executor.audit("reconcile_positions_unavailable", {"error": str(error)})
        return
    keys = {ledger.instrument.symbol: ledger.instrument.key for ledger in ledgers}
    unbooked = {}
    for symbol, (ours, theirs) in compare_positions(ledgers, report.positions).items():
        _difference(executor, report, "POSITION", symbol=symbol, ledger=ours, venue=theirs)
        unbooked[keys[symbol]] = theirs - ours
    executor.unbooked = unbooked
