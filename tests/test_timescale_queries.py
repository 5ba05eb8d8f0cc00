"""The 1-minute aggregates and the read queries, on real trades written by the real writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.replay.recordings import Recordings
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate, queries
from models.events import DeadLetter, Position, Trade
from tests.conftest import SHARED_DATA
from tests.postgres_service import fresh_database

RECORDINGS = [SHARED_DATA / "binance" / m / "btcusdt_20240808.gz" for m in ("spot", "usdm")]
MINUTE_NS = 60 * 10**9
START = datetime(2024, 8, 8, tzinfo=UTC)
END = START + timedelta(days=2)


@pytest.fixture(scope="module")
def filled(postgres_dsn):
    """A database holding both BTCUSDT recordings (spot and USD-M) and their trades."""
    trades = []
    with fresh_database(postgres_dsn) as dsn, connect(TimescaleConfig(dsn=dsn)) as conn:
        migrate(conn)
        writer = EventWriter(conn, TimescaleConfig(dsn=dsn))
        for event in Recordings(RECORDINGS).events():
            if isinstance(event, Trade):
                trades.append(event)
        writer.write(trades)
        writer.flush()
        yield conn, trades


def _bars_in_python(trades: list[Trade], venue: str) -> list[dict]:
    """1-minute OHLCV by exchange time, first/last by (exchange, receive) time."""
    by_minute: dict[int, list[Trade]] = {}
    for trade in trades:
        if trade.venue == venue:
            by_minute.setdefault(trade.exchange_ts // MINUTE_NS, []).append(trade)
    bars = []
    for minute, group in sorted(by_minute.items()):
        ordered = sorted(group, key=lambda t: (t.exchange_ts, t.receive_ts))
        prices = [t.price for t in group]
        bars.append({
            "bucket": datetime.fromtimestamp(minute * 60, UTC),
            "open": ordered[0].price,
            "high": max(prices),
            "low": min(prices),
            "close": ordered[-1].price,
            "volume": sum((t.size for t in group), Decimal(0)),
            "notional": sum((t.price * t.size for t in group), Decimal(0)),
            "trades": len(group),
        })
    return bars


@pytest.mark.slow
@pytest.mark.parametrize(("venue", "symbol"), [("binance", "BTC/USDT"),
                                               ("binanceusdm", "BTC/USDT:USDT")])
def test_ohlcv_view_matches_a_recomputation(filled, venue, symbol):
    conn, trades = filled
    bars = queries.ohlcv_1m(conn, venue, symbol, START, END)
    assert len(bars) >= 6  # 23:54 to 00:00
    assert bars == _bars_in_python(trades, venue)


def test_ohlcv_query_respects_the_time_range(filled):
    conn, _ = filled
    all_bars = queries.ohlcv_1m(conn, "binance", "BTC/USDT", START, END)
    second = all_bars[1]["bucket"]
    window = queries.ohlcv_1m(conn, "binance", "BTC/USDT", second, second + timedelta(minutes=2))
    assert [bar["bucket"] for bar in window] == [second, second + timedelta(minutes=1)]
    assert queries.ohlcv_1m(conn, "binance", "ETH/USDT", START, END) == []


def test_pnl_view_and_latest_positions_take_the_last_sample(postgres_dsn):
    t0 = 1_723_161_240_000_000_000  # 23:54:00
    samples = [
        (t0 + 1, "0.001", "0", "0.01"),
        (t0 + 30 * 10**9, "0.003", "1.25", "-0.5"),
        (t0 + 59 * 10**9, "0.002", "1.50", "0.25"),  # last of the first minute
        (t0 + 61 * 10**9, "0", "2.000000001", "0"),
    ]
    positions = [
        Position(venue="binanceusdm", symbol="BTC/USDT:USDT", ts=ts, quantity=Decimal(q),
                 average_price=None, realized_pnl=Decimal(r), unrealized_pnl=Decimal(u),
                 fees=Decimal("0.1"))
        for ts, q, r, u in samples
    ]
    with fresh_database(postgres_dsn) as dsn, connect(TimescaleConfig(dsn=dsn)) as conn:
        migrate(conn)
        writer = EventWriter(conn, TimescaleConfig(dsn=dsn))
        writer.write(reversed(positions))  # arrival order must not matter, ts_ns decides
        writer.write([DeadLetter(source="binance_hft", reason="bad json", raw="{", receive_ts=t0)])
        writer.flush()
        pnl = queries.pnl_1m(conn, "binanceusdm", "BTC/USDT:USDT", START, END)
        latest = queries.latest_positions(conn)
        letters = queries.dead_letter_counts(conn, START)
    minute = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
    summary = [(p["bucket"], str(p["quantity"]), str(p["realized_pnl"]), p["samples"]) for p in pnl]
    assert summary == [
        (minute, "0.002", "1.50", 3),
        (minute + timedelta(minutes=1), "0", "2.000000001", 1),
    ]
    assert len(latest) == 1 and latest[0]["realized_pnl"] == Decimal("2.000000001")
    assert letters == [{"source": "binance_hft", "reason": "bad json", "count": 1}]
