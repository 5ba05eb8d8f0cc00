"""Replay of the hftbacktest Binance recordings, checked against the exchange's own bookTicker.

Where a bookTicker's update id equals the update id of the book after a diff, both describe
the same instant: the book's best bid/ask (price and size) must equal the ticker's.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.replay.binance_hft import ReplayStats, iter_events
from connectors.replay.jsonl import replay_to_jsonl
from connectors.replay.recordings import Recordings
from connectors.venues import sequencing_rule
from models.book import DEFAULT_BUFFER_LIMIT, BookStatus, OrderBook
from models.events import BBO, BookDelta, BookSnapshot, DeadLetter, Trade, decode
from tests.conftest import BINANCE_FILES

EXPECTED_INSTRUMENT = {
    ("spot", "btcusdt"): ("binance", "BTC/USDT"),
    ("spot", "ethusdt"): ("binance", "ETH/USDT"),
    ("usdm", "btcusdt"): ("binanceusdm", "BTC/USDT:USDT"),
    ("usdm", "ethusdt"): ("binanceusdm", "ETH/USDT:USDT"),
    # COIN-M, inverse: sizes are contracts of 10 USD, settled in ETH.
    ("cm", "ethusd"): ("binancecoinm", "ETH/USD:ETH"),
}


def instrument_of(path: Path) -> tuple[str, str]:
    return EXPECTED_INSTRUMENT[(path.parent.name, path.name.split("_")[0])]


def raw_kind_counts(path: Path) -> dict[str, int]:
    """Message kinds counted straight from the raw lines, independently of the decoder."""
    counts = {"book_delta": 0, "bbo": 0, "trade": 0, "book_snapshot": 0}
    with gzip.open(path, "rb") as lines:
        for line in lines:
            if b'"lastUpdateId"' in line:
                counts["book_snapshot"] += 1
            elif b"@depth" in line:
                counts["book_delta"] += 1
            elif b"@bookTicker" in line:
                counts["bbo"] += 1
            elif b"@trade" in line:
                counts["trade"] += 1
    return counts


@pytest.fixture(scope="module", params=BINANCE_FILES, ids=lambda p: f"{p.parent.name}-{p.name}")
def recording(request, shared_data):
    stats = ReplayStats()
    events = list(iter_events(request.param, stats=stats))
    return request.param, events, stats


def book_events(events):
    return [event for event in events if type(event) in (BookDelta, BookSnapshot)]


def test_binance_files_are_present(shared_data):
    assert {path.parent.name for path in BINANCE_FILES} == {"spot", "usdm", "cm"}
    assert len(BINANCE_FILES) == 5


@pytest.mark.slow
def test_every_message_is_decoded_and_accounted_for(recording):
    path, events, stats = recording
    venue, symbol = instrument_of(path)
    assert stats.dead_letter_reasons == {}
    assert dict(stats.events) == raw_kind_counts(path)
    assert stats.lines == len(events) == sum(stats.events.values())
    assert {(event.venue, event.symbol) for event in events} == {(venue, symbol)}
    receive_times = [event.receive_ts for event in events]
    assert receive_times == sorted(receive_times)
    deltas = [event for event in events if type(event) is BookDelta]
    if venue in ("binanceusdm", "binancecoinm"):
        assert all(delta.prev_seq is not None for delta in deltas)
    else:
        assert all(delta.prev_seq is None for delta in deltas)
    assert all(delta.first_seq <= delta.seq for delta in deltas)


@pytest.mark.slow
def test_book_matches_book_ticker_wherever_update_ids_coincide(recording):
    path, events, _ = recording
    venue, symbol = instrument_of(path)
    book = OrderBook(venue, symbol, sequencing_rule(venue))  # the rule its descriptor names
    tops: dict[int, tuple] = {}  # book update id -> (best bid, best ask) at that id
    tickers: dict[int, tuple] = {}
    for event in events:
        if type(event) is BBO:
            tickers[event.seq] = ((event.bid_price, event.bid_size),
                                  (event.ask_price, event.ask_size))
        elif type(event) in (BookDelta, BookSnapshot):
            book.apply(event)
            if book.synced:
                best_bid, best_ask = book.best_bid(), book.best_ask()
                assert best_bid[0] < best_ask[0]
                tops[book.seq] = (best_bid, best_ask)

    coinciding = tops.keys() & tickers.keys()
    mismatches = [seq for seq in coinciding if tops[seq] != tickers[seq]]
    assert len(coinciding) >= 500
    assert mismatches == []
    # Every diff is either applied or (received before the snapshot and) contained in it.
    stats = book.stats
    n_deltas = sum(1 for event in events if type(event) is BookDelta)
    assert stats.applied + stats.stale == n_deltas
    assert (stats.snapshots, stats.gaps, stats.crossed, stats.resyncs) == (1, 0, 0, 0)
    # Diffs received before the REST snapshot (24 on COIN-M, whose snapshot came later).
    assert 0 < stats.buffered < 30 and book.synced and book.pending == 0


@pytest.mark.slow
def test_trade_sides_follow_the_maker_flag(recording):
    path, events, _ = recording
    trades = [event for event in events if type(event) is Trade]
    with gzip.open(path, "rb") as lines:
        raw = [json.loads(line.partition(b" ")[2])["data"] for line in lines if b"@trade" in line]
    assert [trade.side for trade in trades] == ["sell" if r["m"] else "buy" for r in raw]
    assert [trade.trade_id for trade in trades] == [str(r["t"]) for r in raw]
    # The trade time `T`, when the trade happened (the event time `E` is later).
    assert [trade.exchange_ts for trade in trades] == [r["T"] * 1_000_000 for r in raw]


@pytest.mark.slow
def test_missing_snapshot_leaves_diffs_buffered_and_no_book(recording):
    path, events, _ = recording
    venue, symbol = instrument_of(path)
    book = OrderBook(venue, symbol)
    deltas = [event for event in events if type(event) is BookDelta]
    statuses = {book.apply(delta) for delta in deltas}
    assert statuses == {BookStatus.BUFFERED}
    assert not book.synced and book.best_bid() is None and book.mid() is None
    # The buffer keeps the newest DEFAULT_BUFFER_LIMIT diffs (COIN-M's file has more).
    assert book.stats.buffered == len(deltas)
    assert book.pending == min(len(deltas), DEFAULT_BUFFER_LIMIT)


@pytest.mark.slow
@pytest.mark.parametrize("dropped_index", [100, 1500])
def test_dropped_diff_is_a_gap_and_the_book_is_never_wrong(recording, dropped_index):
    """Cut one diff out of the real stream. The gapped book must detect it, show no book
    until a new snapshot (taken from a reference book fed the full stream), then equal the
    reference at every step."""
    path, events, _ = recording
    venue, symbol = instrument_of(path)
    stream = book_events(events)
    reference, gapped = OrderBook(venue, symbol), OrderBook(venue, symbol)
    synced_at = next(i for i, event in enumerate(stream) if type(event) is BookSnapshot)
    dropped = synced_at + dropped_index
    resnapshot_at = dropped + 50
    statuses = []
    for index, event in enumerate(stream):
        reference.apply(event)
        if index == dropped:
            continue
        statuses.append(gapped.apply(event))
        if index == resnapshot_at:
            fresh = BookSnapshot(
                venue=venue, symbol=symbol, exchange_ts=event.exchange_ts,
                receive_ts=event.receive_ts, seq=reference.seq,
                bids=reference.levels("bid", 10**6), asks=reference.levels("ask", 10**6),
            )
            statuses.append(gapped.apply(fresh))
        if gapped.synced:
            assert gapped.seq == reference.seq
            assert gapped.best_bid() == reference.best_bid()
            assert gapped.best_ask() == reference.best_ask()
            assert gapped.levels("bid", 20) == reference.levels("bid", 20)
        else:
            assert gapped.best_bid() is None and gapped.best_ask() is None
    assert statuses.count(BookStatus.GAP) == 1
    assert gapped.stats.gaps == 1 and gapped.stats.resyncs == 1 and gapped.synced
    assert gapped.levels("ask", 10**6) == reference.levels("ask", 10**6)


# -- bad input ------------------------------------------------------------------------------

SPOT_BTC = next((p for p in BINANCE_FILES if instrument_of(p) == ("binance", "BTC/USDT")), None)


def real_lines(count: int) -> list[bytes]:
    with gzip.open(SPOT_BTC, "rb") as lines:
        return [line for _, line in zip(range(count), lines, strict=False)]


def write_gz(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as out:
        out.writelines(lines)
    return path


def test_corrupt_lines_become_dead_letters_and_reading_goes_on(tmp_path, shared_data):
    good = real_lines(40)
    depth = json.loads(good[0].partition(b" ")[2])
    missing_u = dict(depth, data={k: v for k, v in depth["data"].items() if k != "u"})
    bad_price = dict(depth, data=dict(depth["data"], b=[["61737.6x", "1.0"]]))
    bad = [
        b"not-a-timestamp {}\n",
        b"1723161254000000000 {\"stream\": \"btcusdt@trade\", \"data\": {\n",
        b"1723161254000000001 " + json.dumps(missing_u).encode() + b"\n",
        b"1723161254000000002 " + json.dumps(bad_price).encode() + b"\n",
        b"1723161254000000003 [1, 2, 3]\n",
    ]
    path = write_gz(tmp_path / "corrupt.gz", good[:20] + bad + good[20:])
    stats = ReplayStats()
    events = list(iter_events(path, stats=stats))

    dead = [event for event in events if type(event) is DeadLetter]
    assert len(events) == 45 and len(dead) == 5
    assert stats.dead_letter_reasons == {"bad_timestamp": 1, "bad_message": 4}
    assert dead[0].receive_ts is None and dead[1].receive_ts == 1723161254000000000
    assert dead[0].source == f"{path}:21" and dead[0].raw == "not-a-timestamp {}"
    assert "missing required field `u`" in dead[2].reason and "decimal" in dead[3].reason.lower()
    assert [type(e) for e in events if type(e) is not DeadLetter] == [
        type(e) for e in iter_events(write_gz(tmp_path / "good.gz", good))
    ]


def test_levels_out_of_range_are_bad_messages_and_reading_goes_on(tmp_path, shared_data):
    """A size or price of 1e31 or more (`models.event_bounds`' bound, which `Levels` holds)
    in a diff or the REST snapshot is a `bad_message` dead letter naming the number."""
    good = real_lines(40)
    depth = json.loads(good[0].partition(b" ")[2])
    huge_size = dict(depth, data=dict(depth["data"], a=[["61737.6", "1e40"]]))
    huge_price = dict(depth, data=dict(depth["data"], b=[["-1e31", "1.0"]]))
    snapshot = b'{"lastUpdateId":1,"bids":[["1","0e99"]],"asks":[["2","%s"]]}' % (b"9" * 32)
    bad = [
        b"1723161254000000002 " + json.dumps(huge_size).encode() + b"\n",
        b"1723161254000000003 " + json.dumps(huge_price).encode() + b"\n",
        b"1723161254000000004 " + snapshot + b"\n",
    ]
    path = write_gz(tmp_path / "huge.gz", good[:20] + bad + good[20:])
    stats = ReplayStats()
    events = list(iter_events(path, stats=stats))

    dead = [event for event in events if type(event) is DeadLetter]
    assert len(events) == 43 and stats.dead_letter_reasons == {"bad_message": 3}
    for letter, number in zip(dead, ["1e40", "-1e31", "9" * 32], strict=True):
        assert letter.reason.startswith(f"bad_message: depth levels: {number} is out of range"
                                        " (at most 1e31)"), letter.reason
    assert [type(e) for e in events if type(e) is not DeadLetter] == [
        type(e) for e in iter_events(write_gz(tmp_path / "good.gz", good))
    ]


def test_unknown_streams_are_dead_letters(tmp_path, shared_data):
    good = real_lines(10)
    kline = b'1723161254000000000 {"stream":"btcusdt@kline_1m","data":{"e":"kline"}}\n'
    other_symbol = good[3].replace(b'"btcusdt@trade"', b'"ethusdt@trade"')
    no_data = b'1723161254000000001 {"stream":"btcusdt@trade"}\n'
    path = write_gz(tmp_path / "streams.gz", [*good, kline, other_symbol, no_data])
    stats = ReplayStats()
    events = list(iter_events(path, stats=stats))
    assert stats.dead_letter_reasons == {"unknown_stream": 3}
    assert [event.reason for event in events[-3:]] == [
        "unknown_stream: btcusdt@kline_1m",
        "unknown_stream: ethusdt@trade",
        "unknown_stream: btcusdt@trade",
    ]
    assert stats.events["dead_letter"] == 3 and len(events) == 13


@pytest.mark.slow
def test_truncated_gzip_ends_with_a_dead_letter(tmp_path, shared_data):
    data = SPOT_BTC.read_bytes()
    path = tmp_path / "truncated.gz"
    path.write_bytes(data[: len(data) // 2])
    stats = ReplayStats()
    events = list(iter_events(path, stats=stats))
    assert type(events[-1]) is DeadLetter and events[-1].reason.startswith("bad_file: gzip")
    assert stats.dead_letter_reasons["bad_file"] == 1
    assert stats.events["book_delta"] > 1000 and stats.events["book_snapshot"] == 1


def test_unreadable_or_unidentifiable_files_are_dead_letters(tmp_path, shared_data):
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"this is not gzip\n")
    (event,) = iter_events(not_gzip)
    assert type(event) is DeadLetter and event.reason.startswith("bad_file")

    trades_only = [line for line in real_lines(30) if b"@trade" in line]
    path = write_gz(tmp_path / "trades.gz", trades_only)
    (event,) = iter_events(path)
    assert type(event) is DeadLetter and "no depth diff" in event.reason
    # Told the instrument, the same file decodes.
    events = list(iter_events(path, venue="binance", exchange_symbol="BTCUSDT"))
    assert len(events) == len(trades_only) and all(type(e) is Trade for e in events)

    path = write_gz(tmp_path / "odd.gz", trades_only)
    (event,) = iter_events(path, venue="binance", exchange_symbol="XYZ")
    assert type(event) is DeadLetter and "cannot split" in event.reason
    (event,) = iter_events(path, venue="binancecoinm", exchange_symbol="ETHUSD_SOON")
    assert type(event) is DeadLetter and "not a COIN-M contract" in event.reason


@pytest.mark.parametrize(("exchange_symbol", "venue", "unified"), [
    ("ETHUSD_PERP", "binancecoinm", "ETH/USD:ETH"),
    ("BTCUSD_240927", "binancecoinm", "BTC/USD:BTC-240927"),
    ("BTCUSDT", "binanceusdm", "BTC/USDT:USDT"),
    ("ETHFDUSD", "binance", "ETH/FDUSD"),
])
def test_unified_symbols(exchange_symbol, venue, unified):
    from connectors.replay.binance_hft import unified_symbol

    assert unified_symbol(exchange_symbol, venue) == unified


# -- merged replay and JSON lines -----------------------------------------------------------


@pytest.mark.slow
def test_merged_replay_interleaves_all_files_by_receive_time(shared_data):
    recordings = Recordings(BINANCE_FILES)
    receive_times, count = [], 0
    for event in recordings.events():
        receive_times.append(event.receive_ts)
        count += 1
    assert receive_times == sorted(receive_times)
    assert count == recordings.stats()["lines"] == 41_249 + 33_618 + 93_954 + 74_655 + 40_454


@pytest.mark.slow
def test_replay_to_jsonl_writes_events_with_the_books_top(tmp_path, shared_data):
    spot_eth = next(p for p in BINANCE_FILES if instrument_of(p) == ("binance", "ETH/USDT"))
    broken = write_gz(tmp_path / "broken.gz", [*real_lines(5), b"garbage\n"])
    out = tmp_path / "out" / "replay.jsonl"
    report = replay_to_jsonl([spot_eth, broken], out)

    lines = out.read_bytes().splitlines()
    assert len(lines) == report.lines_written == 33_618 + 6
    assert report.replay["dead_letter_reasons"] == {"bad_timestamp": 1}
    assert set(report.books) == {"binance:ETH/USDT", "binance:BTC/USDT"}
    assert report.as_dict()["books"]["binance:ETH/USDT"]["gaps"] == 0

    statuses = {}
    for line in lines:
        record = json.loads(line)
        event = decode(line)  # the extra book fields do not disturb the event schema
        assert record["type"] == event.__struct_config__.tag
        if record["type"] in ("book_delta", "book_snapshot"):
            statuses[record["book_status"]] = statuses.get(record["book_status"], 0) + 1
            assert record["seq"] == event.seq
            if record["book_status"] == "applied" and event.symbol == "ETH/USDT":
                assert Decimal(record["best_bid"]) < Decimal(record["best_ask"])
            if record["book_status"] == "buffered":
                assert record["best_bid"] is None and record["best_ask"] is None
    assert statuses["applied"] == 3_432 + 1  # every applied diff plus the snapshot
    assert statuses["buffered"] == 2 + 2  # ETH's before its snapshot, BTC's (never synced)
