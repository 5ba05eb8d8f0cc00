"""The persist flow end to end: a replayed recording through Bytewax into a real PostgreSQL."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from bytewax.testing import run_main

from connectors.memory import ChunkedSource
from connectors.replay.recordings import Recordings
from connectors.timescale import (
    MIGRATIONS,
    TimescaleConfig,
    WriterStats,
    applied_migrations,
    connect,
    route,
)
from flows.persist import build_persist_flow
from models.events import BBO, BookDelta, BookSnapshot, DeadLetter, Fill, Position, Trade
from tests.conftest import SHARED_DATA
from tests.postgres_service import fresh_database

USDM_BTC = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
TABLE_OF = {
    BBO: "md_bbo", Trade: "md_trades", BookSnapshot: "md_book_top", BookDelta: "md_book_top",
    DeadLetter: "dead_letters", Fill: "fills", Position: "positions",
}


def _trading_events() -> list:
    common = {"venue": "binanceusdm", "symbol": "BTC/USDT:USDT", "ts": 1_723_161_300_000_000_000}
    return [
        Fill(**common, client_order_id="c1", trade_id="t1", side="buy", price=Decimal("61800.1"),
             size=Decimal("0.002"), fee=Decimal("-0.0024720"), fee_currency="USDT",
             liquidity="maker"),
        Position(**common, quantity=Decimal("0.002"), average_price=Decimal("61800.1"),
                 realized_pnl=Decimal(0), unrealized_pnl=Decimal("0.0002"),
                 fees=Decimal("-0.0024720")),
    ]


@pytest.mark.slow
def test_persist_flow_writes_a_replayed_recording_and_the_counts_match(shared_data, postgres_dsn):
    events = [*Recordings([USDM_BTC]).events(), *_trading_events()]
    expected = Counter(TABLE_OF[type(event)] for event in events)
    closed: list[tuple[str, WriterStats]] = []
    with fresh_database(postgres_dsn) as dsn:
        config = TimescaleConfig(dsn=dsn, batch_rows=2_000, partitions=2)
        flow = build_persist_flow(
            ChunkedSource(events, chunk_size=512), config,
            on_close=lambda part, stats: closed.append((part, stats)),
        )
        run_main(flow)
        with connect(config) as conn:
            assert sorted(applied_migrations(conn)) == [m.version for m in MIGRATIONS]
            stored = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in expected
            }
            book_statuses = dict(
                conn.execute("SELECT status, count(*) FROM md_book_top GROUP BY status").fetchall()
            )
    assert stored == dict(expected)
    assert expected["md_bbo"] > 60_000 and expected["md_trades"] > 20_000
    assert book_statuses["applied"] > 6_000  # the book synced from the REST snapshot and held
    assert sorted(part for part, _ in closed) == ["timescale-0", "timescale-1"]
    assert sum(stats.rejected for _, stats in closed) == 0
    written = Counter()
    for _, stats in closed:
        written.update(stats.written)
    assert written == expected


def test_route_keeps_each_instruments_order_and_groups_the_rest():
    spot = Trade(venue="binance", symbol="BTC/USDT", exchange_ts=1, receive_ts=1,
                 price=Decimal(1), size=Decimal(1), side="buy")
    perp = BBO(venue="binanceusdm", symbol="BTC/USDT:USDT", exchange_ts=2, receive_ts=2,
               bid_price=Decimal(1), bid_size=Decimal(1), ask_price=Decimal(2),
               ask_size=Decimal(1))
    letter = DeadLetter(source="x", reason="y", raw="z")
    fill, position = _trading_events()
    chunk = [spot, perp, fill, spot, letter, "junk", position]
    assert route(chunk) == [
        ("binance:BTC/USDT", [spot, spot]),
        ("binanceusdm:BTC/USDT:USDT", [perp]),
        ("*", [fill, letter, "junk", position]),
    ]
