"""Every dashboard panel's SQL, run on a real PostgreSQL filled from a replayed recording.

No Grafana server can be installed here: the SQL is expanded by `connectors.grafana.macros`,
which reproduces what Grafana's PostgreSQL datasource does (dashboard variables, then
`$__interval`, then the macros), and executed on the session's PostgreSQL. The database is
filled through the real writers (`EventWriter`) with what the real flows produce from the
Binance BTCUSDT spot and USD-M recordings: market data (replay), intents, order events,
fills and positions (the quote flow against the paper venue), arbitrage signals and
predictions (their flows), risk events from the real risk engine reacting to control
commands built here, surveillance alerts the real detectors raise on the backtest's orders
(with a tightened threshold), and dead letters (the replay's and a malformed event's).
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from numbers import Number

import psycopg
import pytest
from bytewax.testing import run_main

from connectors.grafana.dashboards import DASHBOARDS, DASHBOARDS_DIR, VARIABLES
from connectors.grafana.macros import QueryContext, expand
from connectors.memory import CallbackSink, ChunkedSource
from connectors.replay.recordings import Recordings
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from connectors.venues.market_cache import all_instruments, instrument_for
from flows.arbitrage import build_arbitrage_flow
from flows.predict import build_predict_flow
from models.arbitrage import ArbitrageConfig
from models.events import (
    BBO,
    ArbSignal,
    ControlCommand,
    Fill,
    OrderEvent,
    Prediction,
    RiskEvent,
)
from models.predictor import PredictorConfig
from models.risk.engine import RiskEngine
from models.risk.pretrade import OrderRequest, RiskContext
from models.surveillance import SurveillanceConfig, survey
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA
from tests.postgres_service import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.integration]

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
    conn: psycopg.Connection
    fills: list[Fill]
    bbos: list[BBO]
    backtest_rejects: set[str]  # the backtest's own pre-trade rejects (its executor's risk)


@pytest.fixture(scope="module")
def filled_database(shared_data, postgres_dsn):
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


def _run(conn: psycopg.Connection, sql: str, context: QueryContext):
    with conn.cursor() as cursor:
        cursor.execute(expand(sql, context))
        return [c.name for c in cursor.description], cursor.fetchall()


def test_the_committed_dashboard_files_are_up_to_date():
    from connectors.grafana.dashboards import render

    on_disk = {p.name for p in DASHBOARDS_DIR.glob("*.json")}
    assert on_disk == {d.file_name for d in DASHBOARDS}
    for dashboard in DASHBOARDS:
        assert (DASHBOARDS_DIR / dashboard.file_name).read_text() == render(dashboard), (
            f"{dashboard.file_name} is stale: run `quoteflow grafana dashboards`")


def test_every_panel_in_the_files_is_one_of_the_tested_ones():
    tested = {(d.uid, p.title): p.sql for d, p in PANELS}
    for path in DASHBOARDS_DIR.glob("*.json"):
        model = json.loads(path.read_text())
        for panel in model["panels"]:
            (target,) = panel["targets"]
            assert tested[(model["uid"], panel["title"])] == target["rawSql"]
            assert target["format"] in ("time_series", "table")
            assert panel["datasource"]["uid"] == "quoteflow-pg"


@pytest.mark.parametrize(("dashboard", "panel"), PANELS,
                         ids=[f"{d.uid}:{p.title}" for d, p in PANELS])
def test_panel_sql_returns_the_columns_its_panel_expects(filled_database, dashboard, panel):
    columns, rows = _run(filled_database.conn, panel.sql, RECORDED)
    assert tuple(columns) == panel.columns
    assert rows, f"{panel.title}: no rows from the replayed recordings"
    assert "--" not in panel.sql and "/*" not in panel.sql
    if panel.format == "table":
        return
    times = [row[0] for row in rows]
    assert times == sorted(times), "Grafana needs time series sorted by time"
    assert all(isinstance(t, Number | datetime) for t in times)
    values_start = 2 if columns[1] == "metric" else 1
    assert columns[0] == "time"
    assert all(isinstance(row[1], str) for row in rows) or values_start == 1
    for index in range(values_start, len(columns)):
        values = [row[index] for row in rows if row[index] is not None]
        assert values and all(isinstance(v, Number) for v in values), columns[index]


def test_panels_show_both_venues_and_what_the_test_put_in(filled_database):
    by_title = {p.title: p for _, p in PANELS}
    _, mids = _run(filled_database.conn, by_title["Mid price"].sql, RECORDED)
    assert {m for _, m, _ in mids} == {"binance BTC/USDT", "binanceusdm BTC/USDT:USDT"}
    assert all(Decimal(50_000) < mid < Decimal(70_000) for _, _, mid in mids)
    _, states = _run(filled_database.conn, by_title["Trading state"].sql, RECORDED)
    assert [(scope, state) for _, scope, state in states if scope == "binanceusdm"] == [
        ("binanceusdm", 2), ("binanceusdm", 0)]  # paused (HALTED), then resumed
    _, usage = _run(filled_database.conn, by_title["Position limit usage"].sql, RECORDED)
    assert {m for _, m, _ in usage} == {"binance BTC/USDT"}  # the only instrument with a limit
    _, rejects = _run(filled_database.conn, by_title["Pre-trade rejects by reason"].sql, RECORDED)
    assert {reason for _, reason, _ in rejects} == {
        "STATE_HALTED", "MAX_POSITION", *filled_database.backtest_rejects}
    _, letters = _run(filled_database.conn, by_title["Dead letters by reason"].sql, RECORDED)
    assert any(source == "persist:fills" for source, *_ in letters)


def test_the_selection_filters_the_rows(filled_database):
    spot_only = QueryContext(RECORDED.start, RECORDED.end, RECORDED.interval,
                             {"venue": ["binance"], "symbol": ["BTC/USDT"]})
    mid = next(p for _, p in PANELS if p.title == "Mid price")
    _, rows = _run(filled_database.conn, mid.sql, spot_only)
    assert rows and {m for _, m, _ in rows} == {"binance BTC/USDT"}


def test_a_range_without_data_gives_no_rows_and_no_error(filled_database):
    before = QueryContext(datetime(2024, 8, 7, tzinfo=UTC), datetime(2024, 8, 7, 1, tzinfo=UTC),
                          timedelta(minutes=1), RECORDED.variables)
    for _, panel in PANELS:
        columns, rows = _run(filled_database.conn, panel.sql, before)
        assert tuple(columns) == panel.columns and rows == [], panel.title


def test_the_variables_list_the_recorded_instruments(filled_database):
    venue, symbol = VARIABLES
    _, venues = _run(filled_database.conn, venue.sql, RECORDED)
    assert [v for (v,) in venues] == ["binance", "binanceusdm"]
    _, symbols = _run(filled_database.conn, symbol.sql, RECORDED)
    assert [s for (s,) in symbols] == ["BTC/USDT", "BTC/USDT:USDT"]


def test_markouts_match_a_recomputation_from_the_replayed_events(filled_database):
    """docs/pnl.md's definition on the stored (microsecond) times: the first mid at or after
    fill + horizon (ties: the first received), signed, in bps of the fill price."""
    mids: dict[str, list[tuple[int, int, Decimal]]] = defaultdict(list)
    last_us = int(RECORDED.end.timestamp() * 1_000_000) + 90_000_000
    for b in filled_database.bbos:
        if b.exchange_ts // 1000 <= last_us:
            mids[f"{b.venue} {b.symbol}"].append(
                (b.exchange_ts // 1000, b.receive_ts, (b.bid_price + b.ask_price) / 2))
    for series in mids.values():
        series.sort()
    expected: dict[tuple[int, str], list[Decimal]] = defaultdict(list)
    for fill in filled_database.fills:
        instrument = f"{fill.venue} {fill.symbol}"
        series = mids[instrument]
        for label, horizon_us in (("1s", 1_000_000), ("5s", 5_000_000), ("30s", 30_000_000)):
            index = bisect.bisect_left(series, (fill.ts // 1000 + horizon_us,))
            if index == len(series):
                continue
            sign = 1 if fill.side == "buy" else -1
            move = sign * (series[index][2] - fill.price) / fill.price * 10000
            bucket = fill.ts // 10_000_000_000 * 10
            expected[(bucket, f"{instrument} {label}")].append(move)
    markouts = next(p for _, p in PANELS if p.title == "Markouts")
    _, rows = _run(filled_database.conn, markouts.sql, RECORDED)
    got = {(int(t), metric): float(bps) for t, metric, bps in rows}
    assert got.keys() == expected.keys()
    for key, moves in expected.items():
        assert got[key] == pytest.approx(float(sum(moves) / len(moves)), abs=1e-9), key
