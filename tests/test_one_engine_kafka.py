"""One engine: `quoteflow execute` on Kafka trades the backtest's intents exactly as the
backtest's own executor does.

The backtest (`quoteflow.runner.run_paper_trading`) runs the recording through the quote
session, the executor and the paper venue in one process. The Kafka stack gets the same
recording on md.* (the ingest replay) and the backtest's intents on orders.intents, and
`quoteflow execute --until-end` (paper venue, the same latencies and request budget) acts
on them. Orders, fills (with their causality fields) and risk events must be the same.
That the Kafka quote flow computes the same intents as the in-process quote session from the
same market data is `tests/test_flows_kafka.py`'s. What this leaves out: on Kafka our fills
reach the quote flow asynchronously, so a strategy whose quotes depend on inventory can
quote differently between two fills there; in a backtest they arrive at their simulated time.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.kafka import EventProducer
from connectors.paper.trading import PaperSettings
from connectors.replay.recordings import Recordings
from flows.ingest import run_ingest
from models.events import Fill, OrderEvent, OrderIntent, RiskEvent, decode
from quoteflow.cli import app
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA
from tests.kafka_service import kafka_toml, new_deployment, read_topic

pytestmark = pytest.mark.integration

SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
# The executor's request budget on both sides (`[execute]` on Kafka, `PaperSettings` here).
RATE_LIMIT_MS, CAPACITY = 5.0, 20
# Reconciliation runs on the market clock in a backtest and on the wall clock on Kafka: here
# only the one at start-up, on both sides.
RECONCILE_S = 100_000


def _fill_key(fill: Fill) -> tuple:
    return (fill.trade_id, fill.client_order_id, fill.side, fill.price, fill.size, fill.fee,
            fill.ts, fill.liquidity, fill.cause, fill.cause_exchange_ts,
            fill.order_trigger_exchange_ts, fill.order_arrival_exchange_ts)


def _order_key(event: OrderEvent) -> tuple:
    return (event.client_order_id, event.kind, event.side, event.price, event.size,
            event.filled, event.ts, event.reason)


def test_kafka_executor_trades_the_backtests_intents_as_the_backtest_does(
    kafka_bootstrap, tmp_path: Path
):
    options = TradingOptions(
        strategy="glft", params={"gamma": "0.01"},
        paper=PaperSettings(
            rate_limit_ms=RATE_LIMIT_MS, rate_limit_capacity=CAPACITY,
            reconcile_interval_ms=RECONCILE_S * 1000,
        ),
    )
    backtest: list = []
    run_paper_trading(Recordings([SPOT_ETH]).events(), options, on_output=backtest.extend)
    intents = [e for e in backtest if type(e) is OrderIntent]
    assert len(intents) > 100

    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", kafka, paths=[SPOT_ETH])
    producer = EventProducer(kafka)
    producer.send_all(intents)
    producer.close()
    config = tmp_path / "quoteflow.toml"
    config.write_text(
        kafka_toml(kafka)
        + f'[execute]\nexchange = "binance"\nsymbols = ["ETH/USDT"]\n'
        f"paper_rate_limit_ms = {RATE_LIMIT_MS}\nrate_limit_capacity = {CAPACITY}\n"
        f'reconcile_interval_s = {RECONCILE_S}\naudit_path = "{tmp_path / "audit.jsonl"}"\n'
    )
    result = CliRunner().invoke(app, ["execute", "--config", str(config), "--until-end"])
    assert result.exit_code == 0, result.output

    live = [decode(v) for _, _, v in read_topic(kafka, "orders.events")]
    live += [decode(v) for _, _, v in read_topic(kafka, "risk.events")]
    fills = sorted(_fill_key(e) for e in backtest if type(e) is Fill)
    assert fills, "the backtest should trade"
    assert sorted(_fill_key(e) for e in live if type(e) is Fill) == fills
    assert sorted(_order_key(e) for e in live if type(e) is OrderEvent) == sorted(
        _order_key(e) for e in backtest if type(e) is OrderEvent
    )
    assert Counter((e.kind, e.reason_code) for e in live if type(e) is RiskEvent) == Counter(
        (e.kind, e.reason_code) for e in backtest if type(e) is RiskEvent
    )
