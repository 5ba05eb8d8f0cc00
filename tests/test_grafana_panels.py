"""Every dashboard panel's SQL, run on a real PostgreSQL filled from a replayed recording.

No Grafana server can be installed here: the SQL is expanded by `connectors.grafana.macros`,
which reproduces what Grafana's PostgreSQL datasource does (dashboard variables, then
`$__interval`, then the macros), and executed on the session's PostgreSQL. The database is
filled through the real writers with what the real flows produce from the Binance BTCUSDT
spot and USD-M recordings (`tests/dashboard_database.py` says what goes in).
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from numbers import Number

import pytest

from connectors.grafana.dashboards import DASHBOARDS, DASHBOARDS_DIR, VARIABLES
from connectors.grafana.macros import QueryContext
from tests.dashboard_database import (  # noqa: F401 (the fixture)
    PANELS,
    RECORDED,
    filled_database_fixture,
    run_panel_sql,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


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
    columns, rows = run_panel_sql(filled_database.conn, panel.sql, RECORDED)
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
    _, mids = run_panel_sql(filled_database.conn, by_title["Mid price"].sql, RECORDED)
    assert {m for _, m, _ in mids} == {"binance BTC/USDT", "binanceusdm BTC/USDT:USDT"}
    assert all(Decimal(50_000) < mid < Decimal(70_000) for _, _, mid in mids)
    _, states = run_panel_sql(filled_database.conn, by_title["Trading state"].sql, RECORDED)
    assert [(scope, state) for _, scope, state in states if scope == "binanceusdm"] == [
        ("binanceusdm", 2), ("binanceusdm", 0)]  # paused (HALTED), then resumed
    _, usage = run_panel_sql(filled_database.conn, by_title["Position limit usage"].sql, RECORDED)
    assert {m for _, m, _ in usage} == {"binance BTC/USDT"}  # the only instrument with a limit
    _, rejects = run_panel_sql(filled_database.conn, by_title["Pre-trade rejects by reason"].sql,
                               RECORDED)
    assert {reason for _, reason, _ in rejects} == {
        "STATE_HALTED", "MAX_POSITION", *filled_database.backtest_rejects}
    _, letters = run_panel_sql(filled_database.conn, by_title["Dead letters by reason"].sql,
                               RECORDED)
    assert any(source == "persist:fills" for source, *_ in letters)


def test_the_selection_filters_the_rows(filled_database):
    spot_only = QueryContext(RECORDED.start, RECORDED.end, RECORDED.interval,
                             {"venue": ["binance"], "symbol": ["BTC/USDT"]})
    mid = next(p for _, p in PANELS if p.title == "Mid price")
    _, rows = run_panel_sql(filled_database.conn, mid.sql, spot_only)
    assert rows and {m for _, m, _ in rows} == {"binance BTC/USDT"}


def test_a_range_without_data_gives_no_rows_and_no_error(filled_database):
    before = QueryContext(datetime(2024, 8, 7, tzinfo=UTC), datetime(2024, 8, 7, 1, tzinfo=UTC),
                          timedelta(minutes=1), RECORDED.variables)
    for _, panel in PANELS:
        columns, rows = run_panel_sql(filled_database.conn, panel.sql, before)
        assert tuple(columns) == panel.columns and rows == [], panel.title


def test_the_variables_list_the_recorded_instruments(filled_database):
    venue, symbol = VARIABLES
    _, venues = run_panel_sql(filled_database.conn, venue.sql, RECORDED)
    assert [v for (v,) in venues] == ["binance", "binanceusdm"]
    _, symbols = run_panel_sql(filled_database.conn, symbol.sql, RECORDED)
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
    _, rows = run_panel_sql(filled_database.conn, markouts.sql, RECORDED)
    got = {(int(t), metric): float(bps) for t, metric, bps in rows}
    assert got.keys() == expected.keys()
    for key, moves in expected.items():
        assert got[key] == pytest.approx(float(sum(moves) / len(moves)), abs=1e-9), key
