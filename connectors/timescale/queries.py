"""Read queries for the control API and tooling; they run unchanged on both schema forms.

Grafana's panels hold their own SQL (with its time macros) but read the same tables and
views. Rows come back as dicts keyed by column name; numbers keep their `Decimal` types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

Record = dict[str, Any]


def ohlcv_1m(
    conn: psycopg.Connection, venue: str, symbol: str, start: datetime, end: datetime
) -> list[Record]:
    """1-minute bars (bucket, open, high, low, close, volume, notional, trades), oldest first."""
    return _fetch(
        conn,
        "SELECT bucket, open, high, low, close, volume, notional, trades FROM md_ohlcv_1m"
        " WHERE venue = %s AND symbol = %s AND bucket >= %s AND bucket < %s ORDER BY bucket",
        (venue, symbol, start, end),
    )


def pnl_1m(
    conn: psycopg.Connection, venue: str, symbol: str, start: datetime, end: datetime
) -> list[Record]:
    """Position and PnL at the end of each minute that had a position sample, oldest first."""
    return _fetch(
        conn,
        "SELECT bucket, quantity, realized_pnl, unrealized_pnl, fees, samples FROM pnl_1m"
        " WHERE venue = %s AND symbol = %s AND bucket >= %s AND bucket < %s ORDER BY bucket",
        (venue, symbol, start, end),
    )


def latest_positions(conn: psycopg.Connection) -> list[Record]:
    """The last position sample of every instrument."""
    return _fetch(
        conn,
        "SELECT DISTINCT ON (venue, symbol) venue, symbol, ts, quantity, average_price,"
        " realized_pnl, unrealized_pnl, fees, mark_price"
        " FROM positions ORDER BY venue, symbol, ts_ns DESC",
    )


def dead_letter_counts(conn: psycopg.Connection, since: datetime) -> list[Record]:
    """Dead letters since `since` by source and reason, most frequent first."""
    return _fetch(
        conn,
        "SELECT source, reason, count(*) AS count FROM dead_letters WHERE ts >= %s"
        " GROUP BY source, reason ORDER BY count DESC, source, reason",
        (since,),
    )


def _fetch(conn: psycopg.Connection, sql: str, params: tuple = ()) -> list[Record]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql, params).fetchall()
