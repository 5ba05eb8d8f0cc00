"""Reads for the suspicious-order report (`quoteflow report suspicious`, docs/surveillance.md):
the surveillance alerts of a window and every stored event of the orders they name.

Windows are integer nanoseconds (`ts_ns`), rows oldest first.
"""

from __future__ import annotations

import psycopg

from connectors.timescale.queries import _fetch


def alerts_between(conn: psycopg.Connection, start_ns: int, end_ns: int) -> list[dict]:
    return _fetch(
        conn,
        "SELECT ts_ns, alert_id, account, venue, symbol, kind, value, threshold, window_ns,"
        " detail, client_order_ids FROM surveillance_alerts WHERE ts_ns >= %s AND ts_ns < %s"
        " ORDER BY ts_ns, alert_id",
        (start_ns, end_ns),
    )


def order_events_of(conn: psycopg.Connection, client_order_ids: list[str]) -> list[dict]:
    """Every order event and fill of these orders, at any time (an order named by an alert may
    have been placed before the window), as one list of `kind`-tagged rows."""
    if not client_order_ids:
        return []
    return _fetch(
        conn,
        "SELECT ts_ns, venue, symbol, client_order_id, exchange_order_id, kind, side, price,"
        " size, filled, NULL AS trade_id, reason FROM order_events"
        " WHERE client_order_id = ANY(%(ids)s)"
        " UNION ALL SELECT ts_ns, venue, symbol, client_order_id, NULL, 'execution', side, price,"
        " size, size, trade_id, NULL FROM fills WHERE client_order_id = ANY(%(ids)s)"
        " ORDER BY ts_ns, client_order_id, kind",
        {"ids": client_order_ids},
    )
