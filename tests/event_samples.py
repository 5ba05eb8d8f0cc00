"""One event of every type that is not market data, for the tests of the Kafka wire and the
broker (market data comes from recordings)."""

from __future__ import annotations

from decimal import Decimal

from models.events import (
    ArbSignal,
    ControlCommand,
    DeadLetter,
    Fill,
    OrderEvent,
    OrderIntent,
    Position,
    Prediction,
    Quote,
    RiskEvent,
)

D = Decimal


def sample_events() -> list:
    """One of every event type that is not market data (market data comes from recordings)."""
    common = {"venue": "binanceusdm", "symbol": "BTC/USDT:USDT", "ts": 1_723_161_254_000_000_000}
    return [
        OrderIntent(intent_id="i-1", strategy="glft", bids=[Quote(D("58000.1"), D("0.002"))],
                    asks=[Quote(D("58010.0"), D("0.002"))], reference_mid=D("58005.05"),
                    **common),
        OrderEvent(kind="ack", client_order_id="c-1", side="buy", price=D("58000.1"),
                   size=D("0.002"), remaining=D("0.002"), **common),
        Fill(client_order_id="c-1", trade_id="t-1", side="buy", price=D("58000.1"),
             size=D("0.001"), fee=D("-0.0011600"), fee_currency="USDT", liquidity="maker",
             **common),
        Position(quantity=D("0.001"), average_price=D("58000.1"), realized_pnl=D("0"),
                 unrealized_pnl=D("0.0049"), fees=D("-0.00116"), **common),
        ArbSignal(ts=common["ts"], kind="spot_perp", buy_venue="binance", buy_symbol="BTC/USDT",
                  buy_price=D("57990.00"), sell_venue="binanceusdm",
                  sell_symbol="BTC/USDT:USDT", sell_price=D("58010.1"), size=D("0.5"),
                  gross_edge_bps=3.4, net_edge_bps=-4.6, buy_age_ns=1000, sell_age_ns=2000),
        Prediction(horizon_ns=1_000_000_000, model="logreg", prob_up=0.55, prob_down=0.45,
                   **common),
        RiskEvent(ts=common["ts"], kind="breach", reason_code="max_inventory", detail="0.5 > 0.4",
                  state="REDUCING", venue="binanceusdm", symbol="BTC/USDT:USDT"),
        ControlCommand(command_id="cmd-1", ts=common["ts"], issued_by="alice", action="pause",
                       target="binanceusdm:BTC/USDT:USDT"),
        DeadLetter(source="replay:1", reason="bad_file: test", raw="{"),
    ]
