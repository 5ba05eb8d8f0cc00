"""Read queries for the control API and tooling; they run unchanged on both schema forms.

Grafana's panels hold their own SQL (with its time macros) but read the same tables and
views. Rows come back as dicts keyed by column name; numbers keep their `Decimal` types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from models.events import ControlCommand

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


def order_events(
    conn: psycopg.Connection,
    *,
    venue: str | None = None,
    symbol: str | None = None,
    client_order_id: str | None = None,
    before_ns: int | None = None,
    limit: int = 100,
) -> list[Record]:
    """Order events newest first, optionally filtered; `before_ns` pages back in time."""
    return _fetch(
        conn,
        "SELECT ts, ts_ns, venue, symbol, kind, client_order_id, exchange_order_id, side,"
        " price, size, filled, remaining, reason FROM order_events"
        " WHERE (%(venue)s::text IS NULL OR venue = %(venue)s)"
        " AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)"
        " AND (%(client)s::text IS NULL OR client_order_id = %(client)s)"
        " AND (%(before)s::bigint IS NULL OR ts_ns < %(before)s)"
        " ORDER BY ts_ns DESC LIMIT %(limit)s",
        {"venue": venue, "symbol": symbol, "client": client_order_id, "before": before_ns,
         "limit": limit},
    )


def audit_records(
    conn: psycopg.Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[int, str] | None = None,
    limit: int = 100,
) -> list[Record]:
    """Audit records newest first; `before` is the (ts_ns, hash) of the last row of a page.

    Several chains (executor, API) share the table, so `seq` is not unique across it; the
    hash is, and breaks ties between records of the same nanosecond.
    """
    before_ns, before_hash = before if before is not None else (None, None)
    return _fetch(
        conn,
        "SELECT ts, ts_ns, seq, actor, action, payload, prev_hash, hash FROM audit"
        " WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
        " AND (%(action)s::text IS NULL OR action = %(action)s)"
        " AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR ts < %(until)s)"
        " AND (%(before_ns)s::bigint IS NULL OR (ts_ns, hash) < (%(before_ns)s, %(before_hash)s))"
        " ORDER BY ts_ns DESC, hash DESC LIMIT %(limit)s",
        {"actor": actor, "action": action, "since": since, "until": until,
         "before_ns": before_ns, "before_hash": before_hash, "limit": limit},
    )


def trading_states(conn: psycopg.Connection) -> list[Record]:
    """The last state change of every scope (venue and symbol NULL for `*`)."""
    return _fetch(
        conn,
        "SELECT DISTINCT ON (venue, symbol) venue, symbol, ts, state, reason_code, detail"
        " FROM risk_events WHERE kind = 'state_change' ORDER BY venue, symbol, ts_ns DESC",
    )


def control_commands(conn: psycopg.Connection, actions: Sequence[str]) -> list[Record]:
    """Every stored command with one of `actions`, oldest first."""
    return _fetch(
        conn,
        "SELECT ts, ts_ns, command_id, issued_by, action, target, params FROM control_commands"
        " WHERE action = ANY(%s) ORDER BY ts_ns, command_id",
        (list(actions),),
    )


def stored_commands(conn: psycopg.Connection) -> list[ControlCommand]:
    """Every stored command as it was signed (signature, key id, nonce and version with it),
    oldest first: `models.command_signing.verifies` re-checks who issued each one."""
    names = ("ts", "command_id", "issued_by", "action", "target", "params", "v", "nonce",
             "key_id", "signature")
    rows = conn.execute(
        "SELECT ts_ns, command_id, issued_by, action, target, params, coalesce(v, 1), nonce,"
        " key_id, signature FROM control_commands ORDER BY ts_ns, command_id"
    ).fetchall()
    return [ControlCommand(**dict(zip(names, row, strict=True))) for row in rows]


def control_acks(conn: psycopg.Connection, actions: Sequence[str]) -> list[Record]:
    """Every stored acknowledgement of a command with one of `actions`, oldest first."""
    return _fetch(
        conn,
        "SELECT ts, ts_ns, process, command_id, issued_by, action, target, status, reason,"
        " state FROM control_acks WHERE action = ANY(%s) ORDER BY ts_ns, command_id",
        (list(actions),),
    )


def _fetch(
    conn: psycopg.Connection, sql: str, params: tuple | Mapping[str, Any] = ()
) -> list[Record]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql, params).fetchall()
