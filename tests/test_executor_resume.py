"""A restarted executor acts again on the last intent it took per strategy and instrument
(`Executor.resume`, `models.execution.past_run`): a kill between the intent's `intent` record
and its orders must not leave the venue with the previous intent's quotes, and re-applying
an intent that was acted on in full sends nothing.

In process, on the paper venue replaying a Binance spot recording: each "run" is a new
`Executor` on the same venue and audit file, as a process restarted against a venue that
kept its orders (a ccxt exchange). The same path over Kafka, with SIGKILL:
tests/test_execute_restarts_ccxt.py and tests/test_execute_restarts.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec
import pytest

from connectors.audit_store import AuditStore, read_audit, verify_audit
from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.reconcile import reconcile
from models.audit import AuditChain
from models.events import ControlCommand, OrderIntent
from models.execution.past_run import past_run
from models.risk import RiskEngine, TradingState, parse_limits
from tests.paper_executor import INSTRUMENT, Market, audit_trail, open_at_venue

AGE_NS = 1_000_000_000


@pytest.fixture
def market(shared_data) -> Market:
    market = Market()
    market.advance(3000)  # past the REST snapshot: the book is live
    return market


def _run(market: Market, tmp_path) -> tuple[Executor, AuditStore, list[OrderIntent]]:
    """A new executor on the audit file, as a restarted process builds it."""
    path = tmp_path / "audit.jsonl"
    past = past_run(read_audit(path), "executor") if path.exists() else past_run([], "executor")
    store = AuditStore(path, sync_every=0)
    executor = Executor(
        market.adapter, [INSTRUMENT], RiskEngine(parse_limits({})), emit=lambda _: None,
        clock=lambda: market.paper.now_ns, audit=store,
        config=ExecutorConfig(max_intent_age_ns=AGE_NS),
    )
    resumed = executor.resume(past)
    return executor, store, resumed


async def _restart(executor: Executor, resumed: list[OrderIntent]) -> None:
    """What the service does at start: reconcile, then the resumed intents, like any."""
    await reconcile(executor)
    await executor.enforce_states()
    for intent in resumed:
        await executor.on_intent(intent)


def _quotes(market: Market) -> set[tuple[str, object, object]]:
    return {(o["side"], o["price"], o["remaining"]) for o in market.paper.fetch_open_orders()}


def _desired(intent: OrderIntent) -> set[tuple[str, object, object]]:
    return ({("buy", q.price, q.size) for q in intent.bids}
            | {("sell", q.price, q.size) for q in intent.asks})


def test_the_intent_a_kill_took_before_its_orders_is_acted_on_after_the_restart(
    market, tmp_path
):
    first, store, resumed = _run(market, tmp_path)
    assert resumed == []
    before = market.intent("before", bid_ticks=500, ask_ticks=500)  # far: no fill
    asyncio.run(first.on_intent(before))
    market.settle()
    assert _quotes(market) == _desired(before)
    # The kill: right after the next intent's record, before anything was sent for it.
    last = market.intent("last", bid_ticks=800, ask_ticks=800)
    first.audit("intent", last)
    store.close()

    second, store, resumed = _run(market, tmp_path)
    assert resumed == [last]
    asyncio.run(_restart(second, resumed))
    asyncio.run(second.on_intent(last))  # the copy read again from Kafka: a duplicate
    market.settle()
    asyncio.run(reconcile(second))
    store.close()
    assert _quotes(market) == _desired(last)

    third, store, resumed = _run(market, tmp_path)  # acted on in full: nothing to send
    assert resumed == [last]
    records_before = len(audit_trail(tmp_path))
    asyncio.run(_restart(third, resumed))
    store.close()
    market.settle()
    assert _quotes(market) == _desired(last)

    records = audit_trail(tmp_path)
    assert not [r for r in records[records_before:] if r["action"] == "order_request"]
    resumes = [(r["payload"]["intent"]["intent_id"], r["payload"]["generation"])
               for r in records if r["action"] == "intent_resumed"]
    assert resumes == [("last", 1), ("last", 2)]
    dropped = [r["payload"] for r in records if r["action"] == "intent_dropped"]
    assert dropped == [{"intent_id": "last", "reason": "DUPLICATE"}]
    creates = Counter(r["payload"]["client_order_id"] for r in records
                      if r["action"] == "order_request" and r["payload"]["request"] == "create")
    assert max(creates.values()) == 1  # no client id twice (the paper venue amends in place)
    assert verify_audit(tmp_path / "audit.jsonl").ok


def test_a_resumed_intent_still_passes_the_risk_state_and_its_instrument(market, tmp_path):
    """Only the duplicate and age checks are waived: an intent for an instrument this run
    does not trade is dropped again."""
    first, store, _ = _run(market, tmp_path)
    foreign = msgspec.structs.replace(market.intent("foreign"), symbol="ETH/USDT")
    first.audit("intent", foreign)
    store.close()
    second, store, resumed = _run(market, tmp_path)
    asyncio.run(_restart(second, resumed))
    store.close()
    dropped = [r["payload"] for r in audit_trail(tmp_path) if r["action"] == "intent_dropped"]
    assert dropped == [{"intent_id": "foreign", "reason": "UNKNOWN_INSTRUMENT"}]
    assert open_at_venue(market) == set()


def _command(action: str, target: str = "binance:BTC/USDT") -> ControlCommand:
    return ControlCommand(command_id=action, ts=1, issued_by="alice", action=action,
                          target=target)


def test_a_kill_survives_the_restart_and_its_scope_is_not_quoted_again(market, tmp_path):
    """The kill's state change recorded, then the process killed before its cancels were
    sent: the restart holds the instrument HALTED again, cancels the orders it adopts there,
    and drops the resumed intent as HALTED."""
    first, store, _ = _run(market, tmp_path)
    before = market.intent("before", bid_ticks=500, ask_ticks=500)
    asyncio.run(first.on_intent(before))
    market.settle()
    first.audit("control", _command("kill"))
    assert first.risk.on_command(_command("kill"))
    for event in first.risk.take_events():
        first.audit("risk_event", event)
    store.close()
    assert len(open_at_venue(market)) == 2

    second, store, resumed = _run(market, tmp_path)
    assert second.risk.state("binance", "BTC/USDT") is TradingState.HALTED
    asyncio.run(_restart(second, resumed))
    store.close()
    market.settle()
    assert open_at_venue(market) == set()
    dropped = [r["payload"] for r in audit_trail(tmp_path) if r["action"] == "intent_dropped"]
    assert dropped == [{"intent_id": "before", "reason": "HALTED"}]


# -- the fold: which intent was the last one taken ---------------------------------------------


def _intent(intent_id: str, ts: int, strategy: str = "s") -> dict:
    return msgspec.to_builtins(OrderIntent(
        intent_id=intent_id, venue="binance", symbol="BTC/USDT", ts=ts, strategy=strategy,
        bids=[], asks=[]))


def test_the_last_intent_taken_per_strategy_and_instrument_not_a_dropped_one():
    chain = AuditChain()
    records = [
        chain.append(10, "executor", "intent", _intent("a", 10)),
        chain.append(11, "executor", "order_request", {"request": "create"}),
        chain.append(12, "executor", "intent", _intent("b", 12)),  # dropped: not taken
        chain.append(12, "executor", "intent_dropped", {"intent_id": "b", "reason": "STALE"}),
        chain.append(13, "executor", "intent", _intent("c", 13, strategy="t")),
        chain.append(14, "executor", "intent", _intent("a", 10)),  # read again, then killed
        chain.append(20, "executor", "state", {"executor": "start"}),
        chain.append(21, "executor", "intent_resumed", {"intent": _intent("a", 10),
                                                        "generation": 1}),
        chain.append(22, "executor", "intent", _intent("d", 22, strategy="t")),  # killed
    ]
    last = past_run(records, "executor").last_intents
    assert {key: (t.intent.intent_id, t.recorded_ts, t.resumes) for key, t in last.items()} \
        == {("s", "binance:BTC/USDT"): ("a", 10, 1), ("t", "binance:BTC/USDT"): ("d", 22, 0)}


def test_an_intent_cut_off_from_its_stale_drop_is_not_resumed(market, tmp_path):
    """A kill between `intent` and `intent_dropped` (STALE): recorded older than the limit, it
    cannot have been taken."""
    first, store, _ = _run(market, tmp_path)
    now = market.paper.now_ns
    first.audit("intent", market.intent("old", ts=now - 2 * AGE_NS), ts=now)
    store.close()
    _, store, resumed = _run(market, tmp_path)
    store.close()
    assert resumed == []


def test_the_trading_states_left_come_back_a_resume_clears_its_scope_and_narrower_ones():
    chain = AuditChain()

    def change(ts: int, state: str, reason: str, venue=None, symbol=None):
        return chain.append(ts, "executor", "risk_event", {
            "ts": ts, "kind": "state_change", "reason_code": reason, "detail": "",
            "state": state, "venue": venue, "symbol": symbol})

    records = [
        change(1, "HALTED", "CMD_KILL", "binance", "BTC/USDT"),
        change(2, "REDUCING", "STOP_LOSS", "binance", "ETH/USDT"),
        change(3, "ACTIVE", "CMD_RESUME", "binance", "BTC/USDT"),
        change(4, "HALTED", "CMD_PAUSE", "okx"),
        chain.append(5, "executor", "risk_event", {"kind": "reject", "state": "HALTED",
                                                   "reason_code": "PRICE_BAND"}),
    ]
    assert past_run(records, "executor").trading_states == {
        "binance:ETH/USDT": TradingState.REDUCING, "okx": TradingState.HALTED}
    records.append(change(6, "ACTIVE", "CMD_RESUME"))
    assert past_run(records, "executor").trading_states == {}


def test_a_resumed_intent_superseded_by_its_own_copy_read_again_is_acted_on_once(
    market, tmp_path
):
    """On a live venue the service takes a backlog at once: the resumed intent and its copy
    read again from Kafka can share a batch, and the older one is SUPERSEDED. The copy is
    then still the resumed intent, acted on (not a DUPLICATE), and only once."""
    first, store, _ = _run(market, tmp_path)
    last = market.intent("last", bid_ticks=500, ask_ticks=500)
    first.audit("intent", last)
    store.close()
    second, store, [resumed] = _run(market, tmp_path)
    asyncio.run(reconcile(second))
    second.drop_intent(resumed, "SUPERSEDED")
    asyncio.run(second.on_intent(last))
    asyncio.run(second.on_intent(last))
    market.settle()
    store.close()
    assert _quotes(market) == _desired(last)
    tail = [(r["action"], r["payload"].get("reason")) for r in audit_trail(tmp_path)
            if r["action"] in ("intent", "intent_resumed", "intent_dropped")][1:]
    assert tail == [("intent_resumed", None), ("intent_dropped", "SUPERSEDED"),
                    ("intent_resumed", None), ("intent", None), ("intent_dropped", "DUPLICATE")]
