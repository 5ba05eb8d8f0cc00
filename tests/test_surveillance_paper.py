"""Abuse patterns traded through the real executor on the paper venue, over the start of a real
recording (Binance spot BTCUSDT, ../shared/data), and what surveillance makes of the order
events and fills the executor reports: large orders on one side cancelled unfilled while
our small order on the other side fills are spoofing (one level) and layering (three); a
wash attempt (a buy at our own resting ask) never reaches the venue (`SELF_TRADE`)."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from models.events import Fill, OrderIntent, Quote, RiskEvent
from models.surveillance import SurveillanceConfig, survey
from tests.paper_executor import INSTRUMENT, Market, paper_executor

TICK = INSTRUMENT.tick_size


@pytest.fixture
def market(shared_data) -> Market:
    market = Market()
    market.advance(3000)  # past the REST snapshot: the book is live
    return market


class Trader:
    """One strategy's intents through the executor; the market advanced between them."""

    def __init__(self, market: Market, tmp_path) -> None:
        self.market = market
        self.executor, self.emitted, self.store = paper_executor(market, tmp_path)
        self._count = 0

    def quote(self, bids: list[tuple], asks: list[tuple]) -> None:
        """Quotes as (ticks from the touch, size): bids below the best bid, asks above the
        best ask (0: at the touch)."""
        book, market = self.market.book, self.market
        self._count += 1
        now = market.paper.now_ns
        intent = OrderIntent(
            intent_id=f"i{self._count}", venue="binance", symbol="BTC/USDT", ts=now,
            strategy="mm", reference_mid=market.mid, trigger_receive_ts=now,
            bids=[Quote(book.best_bid()[0] - t * TICK, D(s)) for t, s in bids],
            asks=[Quote(book.best_ask()[0] + t * TICK, D(s)) for t, s in asks],
        )
        asyncio.run(self._act(intent))

    async def _act(self, intent: OrderIntent) -> None:
        await self.executor.on_intent(intent)
        self.market.settle()
        await self.executor.pump()

    def until_filled(self, side: str, steps: int = 200) -> None:
        for _ in range(steps):
            if any(isinstance(e, Fill) and e.side == side for e in self.emitted):
                return
            self.market.advance(50)
            self.market.settle()
            asyncio.run(self.executor.pump())
        raise AssertionError(f"no {side} fill in {steps * 50} market events")

    def alerts(self):
        self.store.close()
        return survey(self.emitted, "acct-1", SurveillanceConfig())


def _ordinary(trader: Trader) -> None:
    """Six levels a side of the usual size, far from the touch: the sizes the median knows."""
    trader.quote([(5000 + k, "0.001") for k in range(6)], [(5000 + k, "0.001") for k in range(6)])


def test_a_large_bid_pulled_after_our_ask_fills_is_spoofing(market, tmp_path):
    trader = Trader(market, tmp_path)
    _ordinary(trader)
    trader.quote([(2000, "0.05")], [(0, "0.001")])  # 50 times the usual size, far below
    trader.until_filled("sell")
    trader.quote([], [(5000, "0.001")])  # the large bid is pulled, unfilled
    [alert] = trader.alerts()
    assert alert.kind == "spoofing" and alert.value == 50.0
    assert "buy 0.05" in alert.detail and "while we sell" in alert.detail


def test_large_bids_at_three_prices_pulled_after_our_ask_fills_are_layering(market, tmp_path):
    trader = Trader(market, tmp_path)
    _ordinary(trader)
    trader.quote([(2000, "0.05"), (2010, "0.05"), (2020, "0.05")], [(0, "0.001")])
    trader.until_filled("sell")
    trader.quote([], [(5000, "0.001")])
    [alert] = trader.alerts()
    assert alert.kind == "layering" and len(alert.client_order_ids) == 3


def test_a_wash_attempt_is_refused_before_the_venue_and_raises_nothing(market, tmp_path):
    trader = Trader(market, tmp_path)
    _ordinary(trader)
    ask = market.book.best_ask()[0] + 5000 * TICK
    # A buy at our own resting ask: on an exchange it would match us.
    trader.quote([(int((market.book.best_bid()[0] - ask) / TICK), "0.001")], [(5000, "0.001")])
    rejects = [e.reason_code for e in trader.emitted if isinstance(e, RiskEvent)]
    assert rejects == ["SELF_TRADE"]
    assert trader.alerts() == []
