"""Self-trade prevention across strategies on one account, through the real executor on the
paper venue over the start of a real recording (Binance spot BTCUSDT, ../shared/data).

Two strategies trading one account on one venue send their intents to one executor (one
executor per account and exchange, docs/executor.md): each strategy's intent is diffed
against its own quotes only, and risk sees every working order of the account, so an order
of one strategy that would cross a resting order of the other is refused (`SELF_TRADE`)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest

from flows.execute import ExecutorService, ServiceConfig
from models.events import OrderIntent, Quote, RiskEvent
from models.execution.client_ids import client_order_id
from tests.paper_executor import INSTRUMENT, Market, audit_trail, open_at_venue, paper_executor


@pytest.fixture
def market(shared_data) -> Market:
    market = Market()
    market.advance(3000)  # past the REST snapshot: the book is live
    return market


def _as(strategy: str, intent: OrderIntent, **changes) -> OrderIntent:
    return msgspec.structs.replace(intent, strategy=strategy, **changes)


def test_an_order_crossing_another_strategys_resting_order_is_refused(market, tmp_path):
    executor, emitted, store = paper_executor(market, tmp_path)
    # Far from the touch, so the recorded market fills nothing meanwhile.
    a = _as("mm-a", market.intent("a1", bid_ticks=5000, ask_ticks=5000))
    ask_of_a = a.asks[0].price
    # Strategy B bids at A's resting ask: on the venue it would match our own order.
    b = _as("mm-b", market.intent("b1", ask_ticks=6000),
            bids=[Quote(ask_of_a, a.asks[0].size)])

    async def scenario():
        await executor.on_intent(a)
        market.settle()
        await executor.pump()
        await executor.on_intent(b)
        market.settle()
        await executor.pump()

    asyncio.run(scenario())
    store.close()
    [reject] = [e for e in emitted if isinstance(e, RiskEvent) and e.kind == "reject"]
    assert reject.reason_code == "SELF_TRADE"
    assert f"would reach our ask {ask_of_a}" in reject.detail
    # A's quotes were not touched by B's intent; B's own ask went out, its bid did not.
    assert open_at_venue(market) == {
        client_order_id("a1", "buy", 0), client_order_id("a1", "sell", 0),
        client_order_id("b1", "sell", 0),
    }
    decisions = [r["payload"] for r in audit_trail(tmp_path) if r["action"] == "risk_decision"]
    refused = [d for d in decisions if not d["accepted"]]
    assert [(d["client_order_id"], d["reason_code"]) for d in refused] == [
        (client_order_id("b1", "buy", 0), "SELF_TRADE"),
    ]


def test_each_strategys_intents_supersede_only_its_own(market, tmp_path):
    executor, _, store = paper_executor(market, tmp_path)
    service = ExecutorService(executor, ServiceConfig(poll_interval_s=0.001))

    async def scenario():
        stop = asyncio.Event()
        # Queued before the service starts: one backlog holding both strategies' intents.
        await service.submit(_as("mm-a", market.intent("a1")))
        await service.submit(_as("mm-b", market.intent("b1", bid_ticks=70, ask_ticks=70)))
        await service.submit(_as("mm-a", market.intent("a2", bid_ticks=60, ask_ticks=60)))
        running = asyncio.create_task(service.run(stop))
        while len(open_at_venue(market)) < 4:
            await asyncio.sleep(0.001)
        assert open_at_venue(market) == {
            client_order_id(i, side, 0) for i in ("a2", "b1") for side in ("buy", "sell")
        }
        stop.set()
        await running
        market.settle()

    asyncio.run(scenario())
    store.close()
    dropped = [r["payload"] for r in audit_trail(tmp_path) if r["action"] == "intent_dropped"]
    assert dropped == [{"intent_id": "a1", "reason": "SUPERSEDED"}]


def test_quotes_jumping_past_each_other_move_the_far_side_first(market, tmp_path):
    """After a jump the new bid reaches our old ask: the ask is amended away first and the
    bid's risk check sees it at its new price. (Checked all up front, as before, the bid was
    judged against the ask's old price, refused as SELF_TRADE and cancelled, not moved.)"""
    executor, _, store = paper_executor(market, tmp_path)
    tick = INSTRUMENT.tick_size
    first = market.intent("j1", bid_ticks=5000, ask_ticks=5000)
    old_ask, size = first.asks[0].price, first.asks[0].size

    async def scenario():
        await executor.on_intent(first)
        market.settle()
        await executor.pump()
        jumped = msgspec.structs.replace(
            market.intent("j2"), bids=[Quote(old_ask, size)],
            asks=[Quote(old_ask + 5000 * tick, size)],
        )
        await executor.on_intent(jumped)

    asyncio.run(scenario())
    store.close()
    trail = audit_trail(tmp_path)
    refused = [r["payload"] for r in trail
               if r["action"] == "risk_decision" and not r["payload"]["accepted"]]
    assert refused == []
    amends = [(r["payload"]["client_order_id"], Decimal(r["payload"]["price"])) for r in trail
              if r["action"] == "order_request" and r["payload"]["request"] == "amend"]
    assert amends == [
        (client_order_id("j1", "sell", 0), old_ask + 5000 * tick),
        (client_order_id("j1", "buy", 0), old_ask),
    ]
