"""The TimescaleDB flavour of the schema and every Grafana panel, on a real TimescaleDB.

The server is PGlite's WASM PostgreSQL 17 with TimescaleDB 2.23 and its TSL features
(`tests/timescale_service.py`). The migrations run in their TimescaleDB form: hypertables,
compression settings and policies, retention policies, continuous aggregates. The panels'
data is the same as in `tests/test_grafana_panels.py` (its fixture fills a plain PostgreSQL
through the real COPY writer from replayed recordings and the real flows); it is carried over
row for row with INSERTs, because COPY FROM STDIN crashes this server. Every panel's SQL must
then give TimescaleDB the same answer as plain PostgreSQL, before and after the continuous
aggregates are materialised and the chunks compressed. The policies' jobs are run on data
placed around their thresholds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from connectors.grafana.macros import QueryContext
from connectors.timescale import migrate
from connectors.timescale.migrations import (
    COMPRESS_AFTER,
    MARKET_DATA_RETENTION,
    applied_migrations,
    timescale_available,
)
from connectors.timescale.schema import TABLES
from tests.dashboard_database import (  # noqa: F401 (the fixture)
    PANELS,
    RECORDED,
    filled_database_fixture,
    run_panel_sql,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CONTINUOUS_AGGREGATES = ("md_ohlcv_1m", "pnl_1m")


@pytest.fixture(scope="module")
def timescale(timescale_dsn):
    with psycopg.connect(timescale_dsn, autocommit=True) as conn:
        assert timescale_available(conn)
        assert migrate(conn) == sorted(m for m in applied_migrations(conn))
        yield conn


def test_the_migrations_choose_the_timescale_flavour_and_are_idempotent(timescale):
    assert set(applied_migrations(timescale).values()) == {"timescale"}
    assert migrate(timescale) == []
    version = timescale.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0]
    assert version.startswith("2.")


def test_every_table_is_a_compressed_hypertable_with_its_policies(timescale):
    hypertables = dict(timescale.execute(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
    ).fetchall())
    assert hypertables == dict.fromkeys(TABLES, True)
    for table in TABLES.values():
        segments = [name for (name,) in timescale.execute(
            "SELECT attname FROM timescaledb_information.compression_settings "
            "WHERE hypertable_name = %s AND segmentby_column_index IS NOT NULL "
            "ORDER BY segmentby_column_index", (table.name,)).fetchall()]
        assert tuple(segments) == table.index, table.name
    jobs = timescale.execute(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE hypertable_name IS NOT NULL").fetchall()
    compress = {t: c for p, t, c in jobs if p == "policy_compression"}
    retain = {t: c for p, t, c in jobs if p == "policy_retention"}
    assert compress.keys() == set(TABLES)
    assert {c["compress_after"] for c in compress.values()} == {COMPRESS_AFTER}
    assert retain.keys() == {t.name for t in TABLES.values() if t.market_data}
    assert {c["drop_after"] for c in retain.values()} == {MARKET_DATA_RETENTION}


def test_the_minute_aggregates_are_continuous_aggregates_with_refresh_policies(timescale):
    views = dict(timescale.execute(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
    ).fetchall())
    assert views == dict.fromkeys(CONTINUOUS_AGGREGATES, False)  # recent minutes included
    refreshed = {view for (view,) in timescale.execute(
        "SELECT j.hypertable_name FROM timescaledb_information.jobs j "
        "WHERE j.proc_name = 'policy_refresh_continuous_aggregate'").fetchall()}
    assert len(refreshed) == len(CONTINUOUS_AGGREGATES)


# -- every panel on the replayed recordings, against plain PostgreSQL -------------------------

# PGlite runs about three times slower than PostgreSQL: the panels are compared over 90 s of
# the recordings, and only the market data within a margin of that window is carried over
# (the trading records all are). The margin covers what a panel reads outside its range
# (markouts look 30 s ahead); the equality of every answer proves it is enough.
COMPARED = QueryContext(
    start=datetime(2024, 8, 8, 23, 57, tzinfo=UTC),
    end=datetime(2024, 8, 8, 23, 58, 30, tzinfo=UTC),
    interval=RECORDED.interval,
    variables=RECORDED.variables,
)
_MARGIN = timedelta(seconds=45)


def _copy_rows(source: psycopg.Connection, target: psycopg.Connection) -> dict[str, int]:
    """The window's rows of every table, carried over as JSON, re-read by the target's types."""
    copied = {}
    for name, table in TABLES.items():
        # JSON text both ways: numerics keep their digits and scale (never a float).
        # Panels carry trading state forward from before their range: all of those rows.
        since = COMPARED.start - _MARGIN if table.market_data else datetime.min.replace(tzinfo=UTC)
        count, batch = source.execute(
            f"SELECT count(*), json_agg(t)::text FROM {name} t WHERE ts >= %s AND ts < %s",
            (since, COMPARED.end + _MARGIN)).fetchone()
        if count:
            target.execute(
                f"INSERT INTO {name} SELECT * FROM json_populate_recordset(NULL::{name}, "
                "%s::json)", (batch,))
        copied[name] = count
    return copied


@pytest.fixture(scope="module")
def both(filled_database, timescale):
    """(plain PostgreSQL, TimescaleDB) holding the same rows around the compared window."""
    copied = _copy_rows(filled_database.conn, timescale)
    assert copied["md_trades"] > 0 and copied["fills"] > 0
    return filled_database.conn, timescale


def _order(row: tuple) -> tuple:
    """A total order on a panel's rows that ignores the session's time zone."""
    return tuple((v is None, v.timestamp() if isinstance(v, datetime) else v) for v in row)


def _rounded(row: tuple) -> tuple:
    """Floats (model scores) to 12 digits: a compressed chunk sums them in another order."""
    return tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in row)


def _answers(conn: psycopg.Connection) -> dict[str, tuple[tuple, list]]:
    answers = {}
    for dashboard, panel in PANELS:
        columns, rows = run_panel_sql(conn, panel.sql, COMPARED)
        answers[f"{dashboard.uid}:{panel.title}"] = (
            tuple(columns), sorted(map(_rounded, rows), key=_order))
    return answers


def _trade(conn: psycopg.Connection, ts: datetime) -> None:
    ns = int(ts.timestamp() * 1e9)
    conn.execute(
        "INSERT INTO md_trades (ts, exchange_ts_ns, receive_ts_ns, venue, symbol, trade_id, "
        "side, price, size) VALUES (%s, %s, %s, 'binance', 'BTC/USDT', %s, 'buy', %s, %s)",
        (ts, ns, ns, str(ns), Decimal("61000.10"), Decimal("0.001")))


def _run_jobs(conn: psycopg.Connection, proc: str) -> None:
    for (job_id,) in conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s",
            (proc,)).fetchall():
        conn.execute("CALL run_job(%s)", (job_id,))


def _chunks(conn: psycopg.Connection, table: str) -> list[tuple[bool, bool]]:
    """(older than COMPRESS_AFTER, compressed) for each chunk of the table."""
    return conn.execute(
        f"SELECT range_end < now() - INTERVAL '{COMPRESS_AFTER}', is_compressed "
        "FROM timescaledb_information.chunks WHERE hypertable_name = %s", (table,)).fetchall()


def test_every_panel_answers_alike_through_the_policies_life_cycle(both):
    """Every panel gives TimescaleDB plain PostgreSQL's answer: with the continuous
    aggregates computed live, then materialised by their refresh policy's job, then with the
    chunks compressed by the compression policy's job; the retention job then drops the
    recording's market data (from 2024: older than the retention) and keeps trading records."""
    plain, timescale = both
    expected = _answers(plain)
    # Which panels must have rows is tests/test_grafana_panels.py's business; here the
    # market-data ones at least, so the comparison is not between two empty answers.
    assert all(expected[f"quoteflow-market:{title}"][1] for title in ("Mid price", "1-minute bars"))
    assert _answers(timescale) == expected

    _run_jobs(timescale, "policy_refresh_continuous_aggregate")
    (materialised,) = timescale.execute(
        "SELECT count(*) FROM _timescaledb_catalog.continuous_aggs_invalidation_threshold"
    ).fetchone()
    assert materialised == len(CONTINUOUS_AGGREGATES)
    assert _answers(timescale) == expected

    now = datetime.now(UTC)
    for age in (timedelta(days=10), timedelta(hours=1)):  # beside the policies' thresholds
        _trade(timescale, now - age)
    _run_jobs(timescale, "policy_compression")
    assert set(_chunks(timescale, "md_trades")) == {(True, True), (False, False)}
    assert set(_chunks(timescale, "fills")) == {(True, True)}
    assert _answers(timescale) == expected

    (fills,) = timescale.execute("SELECT count(*) FROM fills").fetchone()
    _run_jobs(timescale, "policy_retention")
    ages = [age for (age,) in timescale.execute(
        "SELECT date_part('day', now() - ts) FROM md_trades ORDER BY ts").fetchall()]
    assert ages == [10, 0]  # the recording's trades are gone with their chunks
    assert timescale.execute("SELECT count(*) FROM md_bbo").fetchone() == (0,)
    assert timescale.execute("SELECT count(*) FROM fills").fetchone() == (fills,)
    (total,) = timescale.execute("SELECT sum(size) FROM md_trades").fetchone()
    assert total == Decimal("0.002")  # compressed rows read back exactly
