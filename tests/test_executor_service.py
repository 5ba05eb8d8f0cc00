"""The executor on the paper venue, over the start of a real recording (Binance spot
BTCUSDT, ../shared/data): intent filtering, risk gating, trading states, reconciliation's
differences, and the asyncio service that feeds it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest

from connectors.audit_store import verify_audit
from connectors.execution.reconcile import reconcile
from flows.execute import ExecutorService, ServiceConfig
from models.events import (
    ControlCommand,
    OrderEvent,
    RiskEvent,
)
from models.execution.client_ids import client_order_id
from models.execution.orders import TrackedOrder
from tests.paper_executor import INSTRUMENT, Market, audit_trail, open_at_venue, paper_executor

D = Decimal


@pytest.fixture
def market(shared_data) -> Market:
    market = Market()
    market.advance(3000)  # past the REST snapshot: the book is live
    assert market.book.best_bid() is not None
    return market


def test_duplicate_stale_out_of_order_and_foreign_intents_are_dropped(market, tmp_path):
    executor, _, store = paper_executor(market, tmp_path, max_intent_age_ns=1_000_000_000)
    now = market.paper.now_ns

    async def scenario():
        await executor.on_intent(market.intent("a"))
        await executor.on_intent(market.intent("a"))
        await executor.on_intent(market.intent("old", ts=now - 2_000_000_000))
        await executor.on_intent(market.intent("earlier", ts=now - 1))
        await executor.on_intent(msgspec.structs.replace(market.intent("b"), venue="okx"))

    asyncio.run(scenario())
    store.close()
    reasons = [r["payload"]["reason"] for r in audit_trail(tmp_path)
               if r["action"] == "intent_dropped"]
    assert reasons == ["DUPLICATE", "STALE", "OUT_OF_ORDER", "UNKNOWN_INSTRUMENT"]
    assert open_at_venue(market) == {client_order_id("a", "buy", 0),
                                      client_order_id("a", "sell", 0)}


def test_a_risk_rejection_is_a_risk_event_and_nothing_is_sent(market, tmp_path):
    executor, emitted, store = paper_executor(market, tmp_path, limits={"price_band_bps": "5"})
    # 50 ticks of 0.01 from a ~60000 mid is well inside 5 bps; 5000 ticks is not.
    asyncio.run(executor.on_intent(market.intent("far", bid_ticks=5000, ask_ticks=50)))
    store.close()
    [reject] = [e for e in emitted if isinstance(e, RiskEvent)]
    assert (reject.kind, reject.reason_code) == ("reject", "PRICE_BAND")
    assert open_at_venue(market) == {client_order_id("far", "sell", 0)}
    decisions = [r["payload"] for r in audit_trail(tmp_path) if r["action"] == "risk_decision"]
    assert sorted(d["accepted"] for d in decisions) == [False, True]


def test_reducing_cancels_what_adds_exposure_and_halted_cancels_everything(market, tmp_path):
    executor, emitted, store = paper_executor(market, tmp_path)

    def command(action, target="*"):
        return ControlCommand(command_id=action, ts=market.paper.now_ns, issued_by="ops",
                              action=action, target=target)

    async def scenario():
        await executor.on_intent(market.intent("q"))
        assert len(open_at_venue(market)) == 2
        # Flat: both sides add exposure, so REDUCING pulls both.
        await executor.on_command(command("reduce", "binance:BTC/USDT"))
        market.settle()
        await executor.pump()
        assert open_at_venue(market) == set()
        await executor.on_command(command("resume"))
        await executor.on_intent(market.intent("r"))
        assert len(open_at_venue(market)) == 2
        await executor.on_command(command("pause", "binance"))
        market.settle()
        assert open_at_venue(market) == set()
        await executor.on_intent(market.intent("s"))
        assert open_at_venue(market) == set()
        market.settle()  # the venue's answers take the response latency to come back
        await executor.pump()

    asyncio.run(scenario())
    store.close()
    states = [e.state for e in emitted if isinstance(e, RiskEvent) and e.kind == "state_change"]
    assert states == ["REDUCING", "ACTIVE", "HALTED"]
    cancels = [e for e in emitted if isinstance(e, OrderEvent) and e.kind == "cancel"]
    assert len(cancels) == 4
    assert verify_audit(tmp_path / "audit.jsonl").ok


def test_reconciliation_finds_every_kind_of_difference_and_the_venue_wins(market, tmp_path):
    executor, emitted, store = paper_executor(market, tmp_path,
                                         initial_balances={"USDT": D("1000")})

    async def scenario():
        # Someone else's order on our account, placed behind the executor's back.
        far_bid = market.book.best_bid()[0] - 100
        market.paper.create_order("BTC/USDT", "limit", "buy", D("0.001"), far_bid,
                                  {"clientOrderId": "manual1"})
        # An order we think we sent long ago that never reached the venue.
        executor.tracker.add(TrackedOrder(
            client_order_id="ghost", venue="binance", symbol="BTC/USDT", side="sell",
            price=D("70000"), amount=D("0.001"), sent_ts=0,
        ))
        # A fill whose push we never see: cross the book so the order trades when it
        # arrives (well through the touch: the market moves while it travels).
        market.paper.create_order("BTC/USDT", "limit", "buy", D("0.001"),
                                  market.book.best_ask()[0] + 50, {"clientOrderId": "taker1"})
        market.settle()
        await market.adapter.poll_events()  # the pushed events are lost
        report = await reconcile(executor)
        assert report.differences == {
            "UNKNOWN_OPEN_ORDER": 1, "ORDER_LOST": 1, "MISSING_FILL": 1, "BALANCE": 1,
        }
        assert executor.ledgers[INSTRUMENT.key].quantity == D("0.001")
        assert executor.balances["BTC"] == D("0.001")  # what our fills say too: no difference
        # Expected cash is 1000 USDT less the trade, but the margin-less paper venue keeps
        # the cash flow from zero: the difference is reported, the venue's total kept.
        assert report.balances["USDT"][0] - report.balances["USDT"][1] == D("1000")
        assert "manual1" in {o.client_order_id for o in executor.tracker}
        await executor.shutdown()
        market.settle()
        assert open_at_venue(market) == set()

    asyncio.run(scenario())
    store.close()
    lost = [e for e in emitted if isinstance(e, OrderEvent) and e.client_order_id == "ghost"]
    assert [(e.kind, e.reason) for e in lost] == [("reject", "LOST: never reached the venue")]
    assert verify_audit(tmp_path / "audit.jsonl").ok


def test_the_service_acts_on_the_newest_intent_and_cancels_all_when_stopped(market, tmp_path):
    executor, _, store = paper_executor(market, tmp_path)
    service = ExecutorService(executor, ServiceConfig(poll_interval_s=0.001,
                                                      reconcile_interval_s=0.01))

    async def scenario():
        stop = asyncio.Event()
        for name in ("one", "two", "three"):  # queued before the service starts
            await service.submit(market.intent(name))
        running = asyncio.create_task(service.run(stop))
        while len(open_at_venue(market)) < 2:
            await asyncio.sleep(0.001)
        market.advance(500)
        await asyncio.sleep(0.05)  # a few polls and reconciliations
        stop.set()
        await running
        market.settle()  # the shutdown's cancels reach the venue

    asyncio.run(scenario())
    store.close()
    assert open_at_venue(market) == set()
    records = audit_trail(tmp_path)
    dropped = [r["payload"] for r in records if r["action"] == "intent_dropped"]
    assert dropped == [{"intent_id": "one", "reason": "SUPERSEDED"},
                       {"intent_id": "two", "reason": "SUPERSEDED"}]
    assert any(r["action"] == "reconcile_end" for r in records)
    assert verify_audit(tmp_path / "audit.jsonl").ok


class _Fenced(Exception):
    """What a transport raises when a newer executor took the account (Kafka's KafkaFenced)."""


@pytest.mark.parametrize("how", ["abandon", "error"])
def test_an_abandoned_service_stops_without_its_shutdown(market, tmp_path, how):
    """`abandon()` (the transport was fenced) or an `abandon_on` error from the executor's
    output: the service stops, no cancel is sent and the orders stay open at the venue."""
    executor, _, store = paper_executor(market, tmp_path)
    refused = False

    def publish(record):  # the transport, refusing once fenced (after the file append)
        if refused:
            raise _Fenced("fenced")

    executor._on_audit = publish
    service = ExecutorService(executor, ServiceConfig(poll_interval_s=0.001,
                                                      reconcile_interval_s=0.01),
                              abandon_on=(_Fenced,))

    async def scenario():
        nonlocal refused
        await service.submit(market.intent("quote"))
        running = asyncio.create_task(service.run(asyncio.Event()))
        while len(open_at_venue(market)) < 2:
            await asyncio.sleep(0.001)
        if how == "abandon":
            service.abandon()
            await running
        else:
            refused = True  # the next reconciliation's first record is refused
            with pytest.raises(_Fenced):
                await running

    cancels: list[str] = []
    market.paper.request_cancel = lambda id, *_, **__: cancels.append(id)  # any from now on
    asyncio.run(scenario())
    store.close()
    assert cancels == []
    records = audit_trail(tmp_path)
    assert not [r for r in records if r["action"] == "state"]
    assert not [r for r in records if r["action"] == "order_request"
                and r["payload"]["request"] == "cancel"]
