"""Cash per currency on the paper venue, and what open orders hold of it.

With starting balances the venue is a cash account: buys need quote, sells need base, both
free (total minus what open orders hold). Without them it is margin-less: no checks, and
the totals are the running cash flow from zero (negative quote cash is the cost of a long).
Margin is not modelled: for perpetuals use the margin-less mode and judge risk by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import ccxt

from connectors.paper.orders import NS_PER_MS, PaperOrder
from models.events import Side
from models.instrument import Instrument

ZERO = Decimal(0)


class Balances:
    __slots__ = ("_totals", "checked")

    def __init__(self, initial: Mapping[str, Decimal] | None) -> None:
        self.checked = initial is not None
        self._totals: dict[str, Decimal] = {}
        for currency, amount in (initial or {}).items():
            if not isinstance(amount, Decimal | int) or amount < 0:
                raise ValueError(f"balance of {currency} must be a Decimal >= 0, not {amount!r}")
            self._totals[currency] = Decimal(amount)

    def total(self, currency: str) -> Decimal:
        return self._totals.get(currency, ZERO)

    def apply_fill(
        self, instrument: Instrument, side: Side, price: Decimal, size: Decimal, fee: Decimal
    ) -> None:
        if instrument.inverse:
            # Contracts are no currency: the coin moves by the value the ledger books for the
            # fill (models/accounting.py), less the fee, which is in the coin too.
            value = instrument.settle_value(price, size)
            coin = instrument.settle_currency
            self._totals[coin] = self.total(coin) + (value if side == "buy" else -value) - fee
            return
        notional = price * size
        base, quote = instrument.base, instrument.quote
        if side == "buy":
            self._totals[base] = self.total(base) + size
            self._totals[quote] = self.total(quote) - notional - fee
        else:
            self._totals[base] = self.total(base) - size
            self._totals[quote] = self.total(quote) + notional - fee

    def free(self, currency: str, open_orders: Iterable[PaperOrder]) -> Decimal:
        return self.total(currency) - held(open_orders).get(currency, ZERO)

    def to_ccxt(self, open_orders: Iterable[PaperOrder], now_ns: int) -> dict:
        """ccxt's unified balance structure."""
        used = held(open_orders) if self.checked else {}
        structure: dict = {"info": {"margin_less": not self.checked}}
        for key in ("free", "used", "total"):
            structure[key] = {}
        for currency in sorted(self._totals.keys() | used.keys()):
            total = self.total(currency)
            in_use = used.get(currency, ZERO)
            entry = {"free": total - in_use, "used": in_use, "total": total}
            structure[currency] = entry
            for key, value in entry.items():
                structure[key][currency] = value
        timestamp = now_ns // NS_PER_MS
        structure["timestamp"] = timestamp
        structure["datetime"] = ccxt.Exchange.iso8601(timestamp)
        return structure


def holding(
    instrument: Instrument, side: Side, price: Decimal | None, remaining: Decimal
) -> tuple[str, Decimal]:
    """What an open order holds: a buy its worst-case quote cost with fees, a sell its base.

    A market buy has no price to hold against; the venue checks it when it executes.
    """
    if side == "sell":
        return instrument.base, remaining
    if price is None:
        return instrument.quote, ZERO
    return instrument.quote, price * remaining * (1 + max_fee_rate(instrument))


def held(open_orders: Iterable[PaperOrder]) -> dict[str, Decimal]:
    amounts: dict[str, Decimal] = {}
    for order in open_orders:
        currency, amount = holding(order.instrument, order.side, order.price, order.remaining)
        amounts[currency] = amounts.get(currency, ZERO) + amount
    return amounts


def max_fee_rate(instrument: Instrument) -> Decimal:
    return max(instrument.maker_fee, instrument.taker_fee, ZERO)
