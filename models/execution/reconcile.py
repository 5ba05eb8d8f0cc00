"""Compare our books with the venue's: open orders and balances. The venue's view wins.

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
    initial: Mapping[str, Decimal], ledgers: Iterable[PositionLedger]
) -> dict[str, Decimal]:
    """Cash per currency implied by the starting balances and our fills and fees.

    Per ledger, base moves by the position and quote by −Σ signed price·size − fees, which
    is realized − open_cost − fees (models/accounting.py keeps that identity exact).
    """
    balances = dict(initial)
    for ledger in ledgers:
        instrument = ledger.instrument
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
