"""Order-event sequences with and without market-abuse patterns, for the surveillance tests:
`Orders` builds one instrument's `orders.events` (and feeds them to its surveillance when
asked), the functions below inject wash trades, spoofing and layering."""

from __future__ import annotations

from decimal import Decimal

from models.events import Fill, OrderEvent
from models.surveillance import InstrumentSurveillance, SurveillanceConfig

D = Decimal
S = 1_000_000_000
MS = 1_000_000
T0 = 1_723_161_300 * S


class Orders:
    """Feeds one instrument's surveillance and keeps every alert."""

    def __init__(self, venue: str = "binance", symbol: str = "BTC/USDT", **config) -> None:
        self.venue, self.symbol = venue, symbol
        self.surveillance = InstrumentSurveillance(venue, symbol, "acct-1",
                                                   SurveillanceConfig(**config))
        self.events: list = []
        self.alerts: list = []

    def _feed(self, event) -> None:
        self.events.append(event)
        self.alerts.extend(self.surveillance.on_event(event))

    def event(self, kind, cid, side, price, size, ts, filled="0") -> None:
        self._feed(OrderEvent(venue=self.venue, symbol=self.symbol, ts=ts, kind=kind,
                              client_order_id=cid, side=side, price=D(price), size=D(size),
                              filled=D(filled)))

    def ack(self, cid, side, price, size, ts) -> None:
        self.event("ack", cid, side, price, size, ts)

    def cancel(self, cid, side, price, size, ts) -> None:
        self.event("cancel", cid, side, price, size, ts)

    def fill(self, cid, side, price, size, ts, trade_id) -> None:
        self._feed(Fill(venue=self.venue, symbol=self.symbol, ts=ts, client_order_id=cid,
                        trade_id=trade_id, side=side, price=D(price), size=D(size),
                        fee=D(0), fee_currency="USDT", liquidity="maker"))

    def quotes(self, count: int, start: int, size: str = "0.001") -> int:
        """`count` ordinary two-sided quotes, one a second, each cancelled; the next time."""
        ts = start
        for i in range(count):
            self.ack(f"b{i}", "buy", "60000", size, ts)
            self.ack(f"a{i}", "sell", "60010", size, ts)
            self.cancel(f"b{i}", "buy", "60000", size, ts + 500 * MS)
            self.cancel(f"a{i}", "sell", "60010", size, ts + 500 * MS)
            ts += S
        return ts

    def kinds(self) -> list[str]:
        return [alert.kind for alert in self.alerts]


def spoof(orders: Orders, *, traded: bool, filled: bool = False) -> None:
    ts = orders.quotes(12, T0)
    orders.ack("big", "sell", "60050", "0.01", ts)  # 10x the usual size
    if traded:
        orders.ack("ours", "buy", "60000", "0.001", ts + 100 * MS)
        orders.fill("ours", "buy", "60000", "0.001", ts + 900 * MS, trade_id="t9")
    if filled:
        orders.event("partial_fill", "big", "sell", "60050", "0.01", ts + 1500 * MS, "0.001")
    orders.cancel("big", "sell", "60050", "0.01", ts + 2 * S)


def layering(orders: Orders) -> None:
    """Three large sells at three prices, a buy of ours filled, the sells cancelled."""
    ts = orders.quotes(12, T0)
    for level in range(3):
        orders.ack(f"layer{level}", "sell", str(60050 + 10 * level), "0.01", ts + level * MS)
    orders.fill("x", "buy", "60000", "0.001", ts + S, trade_id="t9")
    for level in range(3):
        orders.cancel(f"layer{level}", "sell", str(60050 + 10 * level), "0.01",
                      ts + 2 * S + level * MS)


def wash(orders: Orders) -> None:
    """Our buy and our sell executed against each other: one trade id on both sides."""
    orders.ack("b", "buy", "60000", "0.001", T0)
    orders.ack("s", "sell", "60000", "0.001", T0 + MS)
    orders.fill("b", "buy", "60000", "0.001", T0 + 2 * MS, trade_id="t1")
    orders.fill("s", "sell", "60000", "0.001", T0 + 2 * MS, trade_id="t1")
