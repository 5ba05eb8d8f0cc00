"""What a restarted executor remembers from its audit trail (models.execution.past_run)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from models.audit import AuditChain
from models.events import Fill, OrderEvent, OrderIntent
from models.execution.past_run import past_run

ORDER = {"venue": "binance", "symbol": "BTC/USDT", "side": "buy", "price": Decimal("1.5"),
         "size": Decimal("2")}


def _event(cid: str, kind: str, ts: int = 1) -> OrderEvent:
    return OrderEvent(ts=ts, kind=kind, client_order_id=cid, **ORDER)


def _intent(intent_id: str, ts: int) -> dict:
    return msgspec.to_builtins(OrderIntent(intent_id=intent_id, venue="binance",
                                           symbol="BTC/USDT", ts=ts, strategy="s",
                                           bids=[], asks=[]))


def _fill(trade_id: str) -> Fill:
    return Fill(venue="binance", symbol="BTC/USDT", ts=2, client_order_id="a", trade_id=trade_id,
                side="buy", price=Decimal("1.50"), size=Decimal("0.25"), fee=Decimal("-0.001"),
                fee_currency="USDT", liquidity="maker")


def test_intents_fills_and_open_orders_come_back_from_the_records_as_written():
    chain = AuditChain()
    records = [
        chain.append(1, "executor", "intent", _intent("i-1", 1)),
        chain.append(2, "executor", "order_event", {"event": _event("a", "ack"), "news": True}),
        chain.append(3, "executor", "order_event", {"event": _event("b", "ack"), "news": True}),
        chain.append(4, "executor", "fill", {"fill": _fill("t-1"), "news": True}),
        chain.append(5, "executor", "fill", {"fill": _fill("t-1"), "news": False}),  # a repeat
        chain.append(6, "executor", "order_event", {"event": _event("a", "fill"), "news": True}),
        chain.append(7, "executor", "order_event", {"event": _event("b", "amend", 9),
                                                    "news": True}),
        chain.append(8, "api", "intent", {"intent_id": "not-ours"}),
        chain.append(9, "executor", "intent", _intent("i-2", 9)),
    ]

    past = past_run(records, "executor")

    assert past.intent_ids == ["i-1", "i-2"]
    assert past.fills == [_fill("t-1")]  # exact: Decimals keep their digits
    assert past.open_orders == {"b": _event("b", "amend", 9)}
    assert [t.intent.intent_id for t in past.last_intents.values()] == ["i-2"]


def test_a_fresh_trail_remembers_nothing():
    past = past_run([], "executor")
    assert (past.intent_ids, past.fills, past.open_orders) == ([], [], {})


def test_the_nonces_of_the_commands_acted_on_come_back_with_their_times():
    chain = AuditChain()
    signed = {"command_id": "c1", "ts": 5, "action": "pause", "nonce": "n-1", "key_id": "k"}
    records = [
        chain.append(1, "executor", "control", signed),
        chain.append(2, "executor", "control", {"command_id": "c0", "ts": 4, "nonce": None}),
        chain.append(3, "executor", "command_refused", {"reason": "replayed", "command": signed}),
        chain.append(4, "api", "control", {**signed, "nonce": "n-api"}),
    ]
    assert past_run(records, "executor").command_nonces == [("n-1", 5)]
