"""Reads for the compliance reports (`quoteflow report tax|trades`, docs/compliance.md).

Every query takes its window as integer nanoseconds (`ts_ns`), the exact ordering key of
the trading tables, and returns rows oldest first.
"""

from __future__ import annotations

import psycopg

from connectors.timescale.queries import _fetch
from models.events import Fill

INTENT_LOOKBACK_NS = 60 * 10**9


def fills_before(conn: psycopg.Connection, end_ns: int) -> list[Fill]:
    """Every stored fill before `end_ns`, oldest first (lots need all history, not a window;
    `models.tax_lots` orders fills of one nanosecond by trade id)."""
    rows = _fetch(
        conn,
        "SELECT venue, symbol, ts_ns, client_order_id, trade_id, side, price, size, fee,"
        " fee_currency, liquidity FROM fills WHERE ts_ns < %s ORDER BY ts_ns",
        (end_ns,),
    )
    return [
        Fill(venue=r["venue"], symbol=r["symbol"], ts=r["ts_ns"],
             client_order_id=r["client_order_id"], trade_id=r["trade_id"], side=r["side"],
             price=r["price"], size=r["size"], fee=r["fee"], fee_currency=r["fee_currency"],
             liquidity=r["liquidity"])
        for r in rows
    ]


def trading_records(conn: psycopg.Connection, start_ns: int, end_ns: int) -> dict[str, list]:
    """What a trade report joins, for the orders with an event or a fill in the window.

    `order_events`, `fills` and executor `risk_decision`s (rejections send no order, so they
    are orders of their own) in the window; for those orders, at any time: the `audit`
    records naming their client id (requests, decisions, the local time each event and fill
    was heard), the `order_intents` their create requests name, and every executor `control`
    and `state` record up to the window's end (who halted or killed; starts and shutdowns)."""
    window = (start_ns, end_ns)
    order_events = _fetch(
        conn,
        "SELECT ts_ns, venue, symbol, kind, client_order_id, exchange_order_id, side, price,"
        " size, filled, remaining, reason FROM order_events WHERE ts_ns >= %s AND ts_ns < %s"
        " ORDER BY ts_ns", window,
    )
    fills = _fetch(
        conn,
        "SELECT ts_ns, venue, symbol, client_order_id, trade_id, side, price, size, fee,"
        " fee_currency, liquidity FROM fills WHERE ts_ns >= %s AND ts_ns < %s ORDER BY ts_ns",
        window,
    )
    rejected = _fetch(
        conn,
        "SELECT ts_ns, seq, actor, action, payload FROM audit WHERE action = 'risk_decision'"
        " AND ts_ns >= %s AND ts_ns < %s AND NOT (payload->>'accepted')::boolean"
        " ORDER BY ts_ns, seq", window,
    )
    cids = sorted({r["client_order_id"] for r in (*order_events, *fills)}
                  | {r["payload"]["client_order_id"] for r in rejected})
    audit = _fetch(
        conn,
        "SELECT ts_ns, seq, actor, action, payload FROM audit WHERE"
        " coalesce(payload->>'client_order_id', payload->'event'->>'client_order_id',"
        " payload->'fill'->>'client_order_id') = ANY(%s)"
        " OR (action IN ('control', 'state') AND ts_ns < %s) ORDER BY ts_ns, seq",
        (cids, end_ns),
    )
    intent_ids = sorted({
        r["payload"]["intent_id"] for r in audit
        if r["action"] == "order_request" and r["payload"].get("intent_id")
    })
    # Rejected orders were never requested: their intents are found by client id among
    # those of the window (and the minute before: an intent is decided as it arrives).
    intents = _fetch(
        conn,
        "SELECT ts_ns, venue, symbol, intent_id, strategy, bid_prices, bid_sizes, ask_prices,"
        " ask_sizes FROM order_intents WHERE intent_id = ANY(%s)"
        " OR (ts_ns >= %s AND ts_ns < %s) ORDER BY ts_ns",
        (intent_ids, start_ns - INTENT_LOOKBACK_NS, end_ns),
    )
    return {"order_events": order_events, "fills": fills, "audit": audit, "intents": intents,
            "rejected": rejected}


