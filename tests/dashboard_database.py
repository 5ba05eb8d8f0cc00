"""A PostgreSQL database filled from the replayed recordings for the dashboard panels' SQL
(tests/test_grafana_panels.py, and TimescaleDB's answers compared with it in
tests/test_timescale_pglite.py). No Grafana server can be installed here: the SQL is expanded
by `connectors.grafana.macros`, which reproduces what Grafana's PostgreSQL datasource does.

The database is filled through the real writers (`EventWriter`) with what the real flows
produce from the Binance BTCUSDT spot and USD-M recordings: market data (replay), intents,
order events, fills and positions (the quote flow against the paper venue), arbitrage signals
and predictions (their flows), risk events from the real risk engine reacting to control
commands built here, surveillance alerts the real detectors raise on the backtest's orders
(with a tightened threshold), and dead letters (the replay's and a malformed event's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from bytewax.testing import run_main

from connectors.grafana.dashboards import DASHBOARDS
from connectors.grafana.macros import QueryContext, expand
from connectors.memory import CallbackSink, ChunkedSource
from connectors.replay.recordings import Recordings
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from connectors.venues.market_cache import all_instruments, instrument_for
from flows.arbitrage import build_arbitrage_flow
from flows.predict import build_predict_flow
from models.arbitrage import ArbitrageConfig
from models.events import BBO, ArbSignal, ControlCommand, Fill, OrderEvent, Prediction, RiskEvent
from models.predictor import PredictorConfig
from models.risk.engine import RiskEngine
from models.risk.pretrade import OrderRequest, RiskContext
from models.surveillance import SurveillanceConfig, survey
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA
from tests.postgres_service import fresh_database

RECORDINGS = [SHARED_DATA / "binance/spot/btcusdt_20240808.gz",
              SHARED_DATA / "binance/usdm/btcusdt_20240808.gz"]
SPOT, PERP = ("binance", "BTC/USDT"), ("binanceusdm", "BTC/USDT:USDT")
# The recordings cover 2024-08-08 23:54:14 to 2024-08-09 00:00:00 UTC.
RECORDED = QueryContext(
    start=datetime(2024, 8, 8, 23, 54, tzinfo=UTC),
    end=datetime(2024, 8, 9, 0, 1, tzinfo=UTC),
    interval=timedelta(seconds=10),
    variables={"venue": ["binance", "binanceusdm"],
               "symbol": ["BTC/USDT", "BTC/USDT:USDT"]},
)
PANELS = [(d, p) for d in DASHBOARDS for p in d.panels]


def _risk_events_and_commands(start_ns: int) -> list:
    """The risk engine's answers to an operator's commands and to two orders."""
    engine = RiskEngine()
    spot = instrument_for(*SPOT)
    second = 1_000_000_000
    commands = [
        ControlCommand(command_id="c1", ts=start_ns, issued_by="alice", action="set_limits",
                       target="binance:BTC/USDT", params={"max_position": "0.05"}),
        ControlCommand(command_id="c2", ts=start_ns + 60 * second, issued_by="alice",
                       action="pause", target="binanceusdm"),
        ControlCommand(command_id="c3", ts=start_ns + 200 * second, issued_by="bob",
                       action="resume", target="binanceusdm"),
    ]
    for command in commands[:2]:
        assert engine.on_command(command)
    paused = instrument_for(*PERP)
    for instrument, size in ((paused, Decimal("0.01")), (spot, Decimal("1"))):
        decision = engine.check(
            OrderRequest(instrument=instrument, side="buy", size=size, price=Decimal("61000")),
            RiskContext(now_ns=start_ns + 90 * second, mid=Decimal("61000.05"),
                        book_ts_ns=start_ns + 90 * second),
        )
        assert not decision.accepted
    assert engine.on_command(commands[2])
    return [*commands, *engine.take_events()]


@dataclass
class Filled:
    """The filled database's connection and some of what went into it."""

    conn: psycopg.Connection
    fills: list[Fill]
    bbos: list[BBO]
    backtest_rejects: set[str]  # the backtest's own pre-trade rejects (its executor's risk)


@pytest.fixture(scope="module", name="filled_database")
def filled_database_fixture(shared_data, postgres_dsn):
    """A fresh database filled through the real writers with what the flows produce from the
    recordings (see this module's docstring); import it into a test module to use it."""
    market = list(Recordings(RECORDINGS).events())
    produced: list = []
    run_paper_trading(iter(market), TradingOptions(strategy="avellaneda-stoikov-infinite"),
                      on_output=produced.extend)
    signals: list = []
    run_main(build_arbitrage_flow(ChunkedSource(market, chunk_size=512),
                                  CallbackSink(signals.extend),
                                  ArbitrageConfig(instruments=all_instruments())))
    predictions: list = []
    run_main(build_predict_flow(ChunkedSource(market, chunk_size=512),
                                CallbackSink(predictions.extend), PredictorConfig()))
    start_ns = market[0].exchange_ts
    fill = next(e for e in produced if isinstance(e, Fill))
    venue_reject = OrderEvent(
        venue=fill.venue, symbol=fill.symbol, ts=fill.ts, kind="reject", client_order_id="r1",
        side="buy", price=fill.price, size=fill.size, reason="post-only order would cross")
    malformed = Fill(**{**{f: getattr(fill, f) for f in fill.__struct_fields__},
                        "price": 61000.5})  # a float: the writer refuses inexact money
    events = [
        *market, *produced, venue_reject, malformed,
        *(s for s in signals if isinstance(s, ArbSignal)),
        *(p for p in predictions if isinstance(p, Prediction)),
        *_risk_events_and_commands(start_ns),
        # The surveillance detectors on the backtest's own orders, with a message-rate
        # threshold low enough for its busiest seconds (the defaults raise nothing there).
        *survey(produced, "acct-1", SurveillanceConfig(max_messages=30)),
    ]
    with fresh_database(postgres_dsn) as dsn:
        config = TimescaleConfig(dsn=dsn)
        with connect(config) as conn:
            migrate(conn, timescale=False)
            writer = EventWriter(conn, config)
            writer.write(events)
            writer.flush()
            assert writer.stats.rejected == 1
            yield Filled(conn, [e for e in produced if isinstance(e, Fill)],
                         [e for e in market if isinstance(e, BBO)],
                         {e.reason_code for e in produced
                          if isinstance(e, RiskEvent) and e.kind == "reject"})


def run_panel_sql(conn: psycopg.Connection, sql: str, context: QueryContext):
    """A panel's SQL expanded for `context` as Grafana would, run; (column names, rows)."""
    with conn.cursor() as cursor:
        cursor.execute(expand(sql, context))
        return [c.name for c in cursor.description], cursor.fetchall()
