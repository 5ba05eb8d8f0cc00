"""The live ccxt path, against a local stand-in for Binance spot's REST API.

Real exchanges are not reachable from here, so `tests/ccxt_standin.py` serves the endpoints
ccxt's `binance` class calls, with Binance's HMAC request signing, response shapes and error
codes; ccxt's own request signing, error mapping and response parsing run for real. ccxt is
in sandbox mode, with its testnet URLs pointed at the stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from decimal import Decimal

import ccxt
import msgspec
import pytest

from connectors.audit_store import AuditStore, verify_audit
from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.live import CcxtVenue
from connectors.execution.reconcile import reconcile
from connectors.execution.retry import RetryPolicy
from connectors.execution.venue import NewOrder
from connectors.secrets import ExchangeCredentials
from connectors.venues.market_cache import instrument_for
from models.events import ControlCommand, Fill, OrderEvent, OrderIntent, Quote, RiskEvent
from models.execution.client_ids import client_order_id
from models.risk import RiskEngine, parse_limits
from tests.ccxt_standin import BinanceSpotStandIn, Fault

API_KEY, SECRET = "standin-key-4f2a", "standin-secret-9c1e77"
START = {"BTC": Decimal("1"), "USDT": Decimal("100000")}
SYMBOL = "BTC/USDT"
INSTRUMENT = instrument_for("binance", SYMBOL)


async def _venue(standin: BinanceSpotStandIn, secret: str = SECRET) -> CcxtVenue:
    return await CcxtVenue.connect(
        "binance", ExchangeCredentials(API_KEY, secret), sandbox=True,
        config=standin.ccxt_config(), capacity=20,
    )


def _intent(intent_id: str, bid: str, ask: str, size: str = "0.001") -> OrderIntent:
    now = time.time_ns()
    return OrderIntent(
        intent_id=intent_id, venue="binance", symbol=SYMBOL, ts=now, strategy="test",
        bids=[Quote(Decimal(bid), Decimal(size))], asks=[Quote(Decimal(ask), Decimal(size))],
        reference_mid=Decimal("60000.05"), trigger_receive_ts=now,
    )


def _executor(venue, emitted, tmp_path, **config) -> tuple[Executor, AuditStore]:
    store = AuditStore(tmp_path / "audit.jsonl")
    executor = Executor(
        venue, [INSTRUMENT], RiskEngine(parse_limits({"price_band_bps": "100"})),
        emit=emitted.append, audit=store,
        config=ExecutorConfig(initial_balances=START, retry=RetryPolicy(base_delay_s=0.01),
                              **config),
    )
    return executor, store


@contextlib.asynccontextmanager
async def _live_executor(tmp_path, emitted, balances=START):
    """The stand-in holding `balances`, a ccxt venue on it and an executor auditing to
    tmp_path; the store and venue closed after."""
    async with BinanceSpotStandIn(API_KEY, SECRET, balances) as standin:
        venue = await _venue(standin)
        executor, store = _executor(venue, emitted, tmp_path)
        try:
            yield standin, executor
        finally:
            store.close()
            await venue.close()


def test_ccxt_signs_requests_and_parses_answers_exactly():
    async def scenario():
        async with BinanceSpotStandIn(API_KEY, SECRET, START) as standin:
            venue = await _venue(standin)
            try:
                assert standin.requests == [("GET", "/api/v3/exchangeInfo")]
                order = await venue.create_order(
                    NewOrder("qftest1", SYMBOL, "buy", Decimal("0.00123"), Decimal("59000.01"))
                )
                assert (order.price, order.amount, order.status) == (
                    Decimal("59000.01"), Decimal("0.00123"), "open",
                )
                assert standin.orders[int(order.exchange_order_id)].type == "LIMIT_MAKER"
                assert await venue.fetch_order("qftest1", SYMBOL) == order
                assert await venue.fetch_order("qfnothere", SYMBOL) is None
                standin.fill("qftest1", Decimal("0.0005"))
                [fill] = await venue.fetch_my_trades(SYMBOL)
                assert (fill.client_order_id, fill.price, fill.size, fill.fee) == (
                    "qftest1", Decimal("59000.01"), Decimal("0.0005"), Decimal("0.02950001"),
                )
                assert fill.liquidity == "maker"
                balance = await venue.fetch_balance()
                assert balance["BTC"] == Decimal("1.0005")
                cancelled = await venue.cancel_order("qftest1", SYMBOL)
                assert cancelled.status == "canceled" and cancelled.client_order_id == "qftest1"
                with pytest.raises(ccxt.OrderNotFound):
                    await venue.cancel_order("qftest1", SYMBOL)
                with pytest.raises(ccxt.OrderImmediatelyFillable):  # post-only would cross
                    await venue.create_order(
                        NewOrder("qftest2", SYMBOL, "buy", Decimal("0.001"), Decimal("60001"))
                    )
            finally:
                await venue.close()

    asyncio.run(scenario())


def test_a_wrong_secret_is_refused_by_the_signature_check():
    async def scenario():
        async with BinanceSpotStandIn(API_KEY, SECRET, START) as standin:
            venue = await _venue(standin, secret="not-the-secret")
            try:
                with pytest.raises(ccxt.AuthenticationError):
                    await venue.create_order(
                        NewOrder("qfbad", SYMBOL, "buy", Decimal("0.001"), Decimal("59000"))
                    )
                assert standin.orders == {}
            finally:
                await venue.close()

    asyncio.run(scenario())


def test_executor_quotes_sees_fills_by_reconciliation_and_kill_cancels_all(tmp_path):
    emitted: list = []

    async def scenario():
        async with _live_executor(tmp_path, emitted) as (standin, executor):
            await reconcile(executor)  # start-up: nothing open, balances as configured
            await executor.on_intent(_intent("i1", "59990.00", "60010.00"))
            bid_id = client_order_id("i1", "buy", 0)
            ask_id = client_order_id("i1", "sell", 0)
            assert {o.client_order_id for o in standin.orders.values()} == {bid_id, ask_id}

            standin.fill(bid_id, Decimal("0.0004"))
            report = await reconcile(executor)
            assert report.balances == {} and report.error is None
            assert executor.ledgers[INSTRUMENT.key].quantity == Decimal("0.0004")
            kinds = [e.kind for e in emitted if isinstance(e, OrderEvent)]
            assert kinds == ["ack", "ack", "partial_fill"]
            assert sum(isinstance(e, Fill) for e in emitted) == 1

            # A new desired price: Binance spot cannot amend in place, so cancel/replace.
            await executor.on_intent(_intent("i2", "59980.00", "60010.00"))
            assert standin.orders_by_client(bid_id).status == "CANCELED"
            assert standin.orders_by_client(client_order_id("i2", "buy", 0)).status == "NEW"
            assert standin.orders_by_client(ask_id).status == "NEW"  # unchanged: kept

            await executor.on_command(ControlCommand(
                command_id="c1", ts=executor.clock(), issued_by="ops", action="kill",
            ))
            assert standin.open_orders() == []
            assert any(isinstance(e, RiskEvent) and e.state == "HALTED" for e in emitted)
            await executor.on_intent(_intent("i3", "59970.00", "60020.00"))
            assert standin.open_orders() == []  # halted: dropped, not sent

    asyncio.run(scenario())
    assert verify_audit(tmp_path / "audit.jsonl").ok
    text = (tmp_path / "audit.jsonl").read_text()
    assert SECRET not in text and API_KEY not in text
    assert SECRET not in repr(ExchangeCredentials(API_KEY, SECRET))


def test_an_ambiguous_create_is_looked_up_and_never_sent_twice(tmp_path):
    emitted: list = []

    async def scenario():
        async with _live_executor(tmp_path, emitted) as (standin, executor):
            # The create is processed, then the gateway answers 502: did it land?
            standin.faults.append(Fault(502, "<html><body>502 Bad Gateway</body></html>",
                                        after_processing=True))
            intent = _intent("amb", "59990.00", "60010.00")
            await executor.on_intent(msgspec.structs.replace(intent, asks=[]))
            assert len(standin.orders) == 1
            assert standin.requests.count(("POST", "/api/v3/order")) == 1
            assert ("GET", "/api/v3/order") in standin.requests  # looked up, found
            [order] = executor.tracker
            assert order.status == "open"

    asyncio.run(scenario())
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["payload"]["error"] for r in records if r["action"] == "request_retry"] == [
        "ExchangeNotAvailable"
    ]


def test_a_429_waits_its_retry_after_and_an_answer_is_never_retried(tmp_path):
    emitted: list = []

    async def scenario():
        poor = {"BTC": Decimal(0), "USDT": Decimal(100)}
        async with _live_executor(tmp_path, emitted, poor) as (standin, executor):
            standin.faults.append(Fault(429, {"code": -1003, "msg": "Too many requests"},
                                        {"Retry-After": "0.2"}))
            # 0.001 BTC at 59990 needs ~60 USDT: the bid goes; the ask has no BTC to sell.
            await executor.on_intent(_intent("lim", "59990.00", "60010.00"))
            assert standin.open_orders() == [client_order_id("lim", "buy", 0)]
            assert standin.requests.count(("POST", "/api/v3/order")) == 3  # 429, ok, refused

    asyncio.run(scenario())
    [reject] = [e for e in emitted if isinstance(e, OrderEvent) and e.kind == "reject"]
    assert reject.client_order_id == client_order_id("lim", "sell", 0)
    assert reject.reason.startswith("InsufficientFunds")
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    [retry] = [r["payload"] for r in records if r["action"] == "request_retry"]
    assert (retry["error"], retry["delay_s"]) == ("DDoSProtection", 0.2)
