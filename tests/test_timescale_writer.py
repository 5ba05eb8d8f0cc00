"""The COPY writers against a real PostgreSQL: exact round trips, batching, bad rows."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from connectors.timescale import (
    EventWriter,
    StorageUnavailable,
    TimescaleConfig,
    connect,
    migrate,
)
from connectors.timescale import rows as row_makers
from connectors.timescale.queries import stored_commands
from connectors.timescale.schema import TABLES
from models.command_signing import sign, verifies
from models.events import (
    BBO,
    ArbSignal,
    BookDelta,
    BookSnapshot,
    ControlAck,
    ControlCommand,
    DeadLetter,
    Fill,
    OrderEvent,
    OrderIntent,
    Position,
    Prediction,
    Quote,
    RiskEvent,
    SurveillanceAlert,
    Trade,
)
from tests.postgres_service import fresh_database

T0 = 1_723_161_256_501_123_456  # ns: sub-microsecond digits must survive in the *_ns columns
D = Decimal
VENUE, SYMBOL = "binanceusdm", "BTC/USDT:USDT"
MARKET = {"venue": VENUE, "symbol": SYMBOL, "exchange_ts": T0, "receive_ts": T0 + 7}


@pytest.fixture
def conn(postgres_dsn):
    with fresh_database(postgres_dsn) as dsn, connect(TimescaleConfig(dsn=dsn)) as connection:
        migrate(connection)
        yield connection


def _writer(conn, **config) -> EventWriter:
    return EventWriter(conn, TimescaleConfig(dsn="unused", **config))


def one_of_each() -> dict[str, object]:
    """An event for every table, with values that a float or a careless cast would change."""
    return {
        "md_bbo": BBO(**MARKET, seq=5_123_107_852_948, bid_price=D("61800.20"),
                      bid_size=D("2.890"), ask_price=D("61800.30"), ask_size=D("0.001")),
        "md_trades": Trade(**MARKET, price=D("61800.10"), size=D("0.100"), side="sell",
                           trade_id="5123107"),
        "md_book_top": BookSnapshot(**MARKET, seq=9, bids=[(D("100.10"), D("1.5")),
                                    (D("100.00"), D("2.25"))], asks=[(D("100.20"), D("3"))]),
        "order_intents": OrderIntent(
            intent_id="i-1", venue=VENUE, symbol=SYMBOL, ts=T0, strategy="glft",
            bids=[Quote(D("61799.9"), D("0.010")), Quote(D("61799.8"), D("0.020"))],
            asks=[Quote(D("61800.4"), D("0.010"))], reference_mid=D("61800.25"),
            trigger_receive_ts=T0 - 3),
        "order_events": OrderEvent(
            venue=VENUE, symbol=SYMBOL, ts=T0, kind="partial_fill", client_order_id="c-1",
            exchange_order_id=None, side="buy", price=D("61799.9"), size=D("0.010"),
            filled=D("0.004"), remaining=D("0.006"), reason=None),
        "fills": Fill(
            venue=VENUE, symbol=SYMBOL, ts=T0, client_order_id="c-1", trade_id="t-1",
            side="buy", price=D("61799.9"), size=D("0.004"), fee=D("-0.0000494399200"),
            fee_currency="USDT", liquidity="maker"),
        "positions": Position(
            venue=VENUE, symbol=SYMBOL, ts=T0, quantity=D("-0.004"), average_price=None,
            realized_pnl=D("12.3456789012345678901234567890"), unrealized_pnl=D("-0.00000001"),
            fees=D("0"), mark_price=D("61800.25")),
        "arb_signals": ArbSignal(
            ts=T0, kind="spot_perp", buy_venue="binance", buy_symbol="BTC/USDT",
            buy_price=D("61790.01"), sell_venue=VENUE, sell_symbol=SYMBOL,
            sell_price=D("61800.3"), size=D("0.5"), gross_edge_bps=1.6652, net_edge_bps=-6.33,
            buy_age_ns=1_000, sell_age_ns=2_000),
        "predictions": Prediction(
            venue=VENUE, symbol=SYMBOL, ts=T0, horizon_ns=1_000_000_000, model="logreg",
            prob_up=0.5123456789012345, prob_down=0.25, rolling_accuracy=None,
            baseline_accuracy=0.5),
        "risk_events": RiskEvent(
            ts=T0, kind="reject", reason_code="max_position", detail="would exceed 10 lots",
            state="ACTIVE", venue=VENUE, symbol=None),
        "control_commands": ControlCommand(
            command_id="cmd-1", ts=T0, issued_by="alice", action="set_params",
            target=f"{VENUE}:{SYMBOL}", params={"gamma": "0.01", "note": "tab\there"}),
        "control_acks": ControlAck(
            ts=T0, process="quote", command_id="cmd-1", issued_by="alice", action="set_params",
            target=f"{VENUE}:{SYMBOL}", status="refused", reason="bad_params: gamma > 10",
            state={"version": 3, "paused": ["*"]}),
        "surveillance_alerts": SurveillanceAlert(
            alert_id="a-1", ts=T0, account="acct-1", venue=VENUE, symbol=SYMBOL,
            kind="spoofing", value=10.5, threshold=5.0, window_ns=30_000_000_000,
            detail="sell 0.01 at 61850 cancelled unfilled", client_order_ids=["c-1", "c-2"]),
        "dead_letters": DeadLetter(source="binance_hft", reason="bad json", raw='{"x": \\',
                                   receive_ts=T0),
    }


def _comparable(value):
    """Stored values and row-maker output in one form: the text the maker sent to COPY."""
    # str() keeps a Decimal's scale (2.890 vs 2.89): the stored number must be the same digits.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}+00"
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, psycopg.types.json.Jsonb):
        return value.obj
    return value


def test_every_event_type_round_trips_exactly(conn):
    events = one_of_each()
    assert set(events) == set(TABLES) - {"audit"}  # no writer maps AuditRecord yet
    writer = _writer(conn)
    writer.write(events.values())
    writer.flush()
    assert writer.stats.rejected == 0
    for table, event in events.items():
        columns = ", ".join(TABLES[table].column_names)
        stored = conn.execute(f"SELECT {columns} FROM {table}").fetchall()
        if table == "md_book_top":
            expected = row_makers.BookTops().row(event)
        elif table == "dead_letters":
            expected = row_makers.dead_letter_row(T0, event.source, event.reason, event.raw)
        else:
            expected = row_makers.ROW_MAKERS[type(event)][1](event)
        assert [_comparable(v) for v in stored[0]] == [_comparable(v) for v in expected], table


def test_timestamps_keep_nanoseconds_beside_microsecond_timestamptz(conn):
    writer = _writer(conn)
    writer.write([one_of_each()["md_bbo"]])
    writer.flush()
    ts, exchange_ns, receive_ns = conn.execute(
        "SELECT ts, exchange_ts_ns, receive_ts_ns FROM md_bbo"
    ).fetchone()
    assert ts == datetime(2024, 8, 8, 23, 54, 16, 501123, tzinfo=UTC)
    assert (exchange_ns, receive_ns) == (T0, T0 + 7)


def test_book_top_row_follows_the_book(conn):
    snapshot = one_of_each()["md_book_top"]
    delta = BookDelta(**{**MARKET, "exchange_ts": T0 + 1}, seq=10, first_seq=9, prev_seq=8,
                      bids=[(D("100.10"), D("0"))], asks=[(D("100.15"), D("4"))])
    writer = _writer(conn)
    writer.write([snapshot, delta])
    writer.flush()
    stored = conn.execute(
        "SELECT kind, status, levels_changed, bid_price, ask_price, bid_depth, ask_depth"
        " FROM md_book_top ORDER BY exchange_ts_ns"
    ).fetchall()
    assert stored == [
        ("snapshot", "applied", 3, D("100.10"), D("100.20"), D("3.75"), D("3")),
        ("delta", "applied", 2, D("100.00"), D("100.15"), D("2.25"), D("7")),
    ]


def test_flushes_by_size_and_by_time(conn):
    now = [0.0]
    writer = EventWriter(conn, TimescaleConfig(dsn="unused", batch_rows=3, flush_interval_s=5),
                         monotonic=lambda: now[0])
    bbo = one_of_each()["md_bbo"]
    trade = one_of_each()["md_trades"]
    writer.write([bbo] * 7 + [trade])

    def count(table: str) -> int:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    assert (count("md_bbo"), count("md_trades")) == (6, 0)  # two full batches of three
    now[0] = 5.0
    writer.write([])
    assert (count("md_bbo"), count("md_trades")) == (7, 1)
    assert writer.stats.written == {"md_bbo": 7, "md_trades": 1}


class NotAnEvent:
    pass


def test_bad_rows_go_to_dead_letters_with_the_reason_and_good_rows_still_land(conn):
    good = one_of_each()
    bad = [
        BBO(**MARKET, bid_price=61800.2, bid_size=D(1), ask_price=D(2), ask_size=D(1)),
        Trade(**MARKET, price=D("NaN"), size=D(1), side="buy"),
        # Passes the row maker; PostgreSQL refuses the NUL byte, the batch is bisected.
        Trade(**MARKET, price=D(1), size=D(1), side="buy", trade_id="a\x00b"),
        Fill(venue=VENUE, symbol=SYMBOL, ts=10**30, client_order_id="c", trade_id="t",
             side="buy", price=D(1), size=D(1), fee=D(0), fee_currency="USDT",
             liquidity="maker"),
        ControlCommand(command_id="c", ts=T0, issued_by="x", action="pause",
                       params={"n": object()}),
        NotAnEvent(),
        "not even a struct",
    ]
    writer = _writer(conn, batch_rows=1000)
    trades = [Trade(**MARKET, price=D(i), size=D(1), side="buy") for i in range(1, 40)]
    writer.write([*trades[:20], *bad, *trades[20:], *good.values()])
    writer.flush()

    assert writer.stats.rejected == len(bad)
    assert writer.stats.lost == 0
    assert conn.execute("SELECT count(*) FROM md_trades").fetchone()[0] == len(trades) + 1
    letters = conn.execute(
        "SELECT source, reason, raw FROM dead_letters WHERE source LIKE 'persist%' ORDER BY reason"
    ).fetchall()
    reasons = {(source, reason) for source, reason, _ in letters}
    assert ("persist:md_bbo", "BadRow: not a finite Decimal: 61800.2") in reasons
    assert ("persist:md_trades", "BadRow: not a finite Decimal: Decimal('NaN')") in reasons
    assert any(s == "persist:md_trades" and "NUL" in r for s, r in reasons)
    assert any(s == "persist:fills" and "OverflowError" in r for s, r in reasons)
    assert any(s == "persist:control_commands" and "TypeError" in r for s, r in reasons)
    assert ("persist", "no table for NotAnEvent") in reasons
    assert ("persist", "no table for str") in reasons
    raws = [raw for source, _, raw in letters if source == "persist:md_trades"]
    assert any('"trade_id":"a\\u0000b"' in raw for raw in raws)  # the event, as its JSON
    # The producer's own dead letter is stored as it came.
    producers = conn.execute("SELECT source FROM dead_letters WHERE source NOT LIKE 'persist%'")
    assert producers.fetchall() == [("binance_hft",)]


def test_unreachable_server_fails_fast_with_a_clear_message():
    with socket.socket() as sock:  # a port bound but not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = TimescaleConfig(dsn=f"postgresql://quoteflow:s3cret@127.0.0.1:{port}/quoteflow")
        with pytest.raises(StorageUnavailable) as error:
            connect(config)
    message = str(error.value)
    where = f"user=quoteflow dbname=quoteflow host=127.0.0.1 port={port}"
    assert message.startswith(f"cannot connect to PostgreSQL at {where}: ")
    assert "Connection refused" in message
    assert "s3cret" not in message


def test_invalid_dsn_and_config_are_refused():
    with pytest.raises(ValueError, match="invalid PostgreSQL DSN"):
        connect(TimescaleConfig(dsn="nonsense=1"))
    with pytest.raises(ValueError, match="batch_rows"):
        TimescaleConfig(batch_rows=0)


def test_a_lost_connection_raises_instead_of_dead_lettering(conn):
    writer = _writer(conn)
    writer.write([one_of_each()["md_bbo"]])
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        writer.flush()
    assert writer.stats.rejected == 0




@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=20))
def test_timestamp_text_is_the_truncated_microsecond_whatever_the_cache_holds(values):
    for ns in values:  # consecutive calls reuse or replace the cached second
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
        assert datetime.fromisoformat(row_makers.ts_text(ns)) == expected


def test_timestamps_far_from_now_round_trip_through_the_server(conn):
    far = [-(2**63), -1, 0, 999, 2**63 - 1]  # the whole range of the bigint ns columns
    writer = _writer(conn)
    writer.write([BBO(**{**MARKET, "exchange_ts": ns}, bid_price=D(1), bid_size=D(1),
                      ask_price=D(2), ask_size=D(1)) for ns in far])
    writer.flush()
    stored = conn.execute("SELECT exchange_ts_ns, ts FROM md_bbo ORDER BY exchange_ts_ns")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert stored.fetchall() == [(ns, epoch + timedelta(microseconds=ns // 1000)) for ns in far]


def test_a_signed_command_is_stored_so_that_its_signature_re_verifies(conn):
    """An auditor re-checks from the database who issued each command: the signature, its key
    id, the nonce and the version are stored with the signed fields; an edited row fails."""
    key = Ed25519PrivateKey.generate()
    signed = sign(ControlCommand(command_id="cmd-7", ts=T0, issued_by="alice", action="kill",
                                 target=f"{VENUE}:{SYMBOL}", params={"why": "tab\there"}),
                  key, "nonce-1")
    unsigned = ControlCommand(command_id="cmd-8", ts=T0 + 1, issued_by="bob", action="pause",
                              v=1)
    writer = _writer(conn)
    writer.write([signed, unsigned])
    writer.flush()

    stored = stored_commands(conn)
    assert stored == [signed, unsigned]
    assert verifies(key.public_key(), stored[0])
    assert not verifies(key.public_key(), stored[1])
    conn.execute("UPDATE control_commands SET target = '*' WHERE command_id = 'cmd-7'")
    assert not verifies(key.public_key(), stored_commands(conn)[0])
