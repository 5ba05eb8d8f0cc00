"""Replay of cryptofeed's own recordings through cryptofeed's exchange parsers, on real data."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from cryptofeed.symbols import Symbols
from hypothesis import given
from hypothesis import strategies as st

from connectors.replay.cryptofeed_events import unified_symbol
from connectors.replay.cryptofeed_files import seconds_to_ns, split_received
from connectors.replay.cryptofeed_recording import ReplayStats, iter_recording
from connectors.venues import VENUES, UnknownVenueError
from models.events import BBO, BookDelta, BookSnapshot, DeadLetter, Trade
from tests.conftest import CRYPTOFEED_DIR
from tests.plain_books import assert_books_never_cross

UNIFIED = re.compile(r"[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+(-\d{6})?)?")
ALL = ("binance", "coinbase", "kraken", "bitstamp", "okx", "gemini")


class Replayed:
    def __init__(self, items: list, stats: ReplayStats) -> None:
        self.items = items
        self.stats = stats

    def of(self, kind: type) -> list:
        return [item for item in self.items if isinstance(item, kind)]


def replay(directory: Path, exchange: str) -> Replayed:
    replayed = iter_recording(directory, exchange)
    return Replayed(list(replayed), replayed.stats)


@pytest.fixture(scope="module", params=ALL)
def recorded(request, shared_data) -> Replayed:
    return replay(CRYPTOFEED_DIR, request.param)


def corrupt_copy(tmp_path: Path, exchange: str, edit) -> Path:
    """A copy of `exchange`'s recording whose received lines went through `edit(line)`."""
    for path in CRYPTOFEED_DIR.glob(f"{exchange}.*"):
        shutil.copy(path, tmp_path / path.name)
    (session,) = tmp_path.glob(f"{exchange}.ws.*")
    lines = session.read_text().splitlines(keepends=True)
    session.write_text("".join(edit(line) for line in lines))
    return tmp_path


def test_every_cryptofeed_exchange_has_a_venue():
    from cryptofeed.exchanges import EXCHANGE_MAP

    assert {v.cryptofeed_id for v in VENUES.values()} >= set(EXCHANGE_MAP)
    assert set(ALL) < set(VENUES)


# Counts follow from the recordings: e.g. Coinbase's 107 tickers, 10 last_match and 3
# subscription acks are ignored (cryptofeed 2.4 has no Coinbase ticker), Bitstamp's 20 acks and
# 100 diffs older than its REST snapshots, Kraken's 31 heartbeats and 11 status messages.
EXPECTED = {
    "binance": ReplayStats("binance", read=265, produced=262, ignored=3, failed=0, events=262),
    "coinbase": ReplayStats("coinbase", read=9946, produced=9826, ignored=120, failed=0,
                            events=9826),
    "kraken": ReplayStats("kraken", read=4321, produced=4279, ignored=42, failed=0, events=4279),
    "bitstamp": ReplayStats("bitstamp", read=747, produced=627, ignored=120, failed=0,
                            events=637),
    "okx": ReplayStats("okx", read=410, produced=392, ignored=18, failed=0, events=392),
    "gemini": ReplayStats("gemini", read=678, produced=671, ignored=7, failed=0, events=671),
}


def test_every_recorded_message_is_accounted_for(recorded):
    stats = recorded.stats
    assert stats.accounted
    assert stats == EXPECTED[stats.exchange]
    assert stats.events == len(recorded.items) - len(recorded.of(DeadLetter))


def test_events_carry_the_venue_and_a_unified_symbol(recorded):
    for event in recorded.items:
        assert event.venue == recorded.stats.exchange
        assert UNIFIED.fullmatch(event.symbol), event.symbol


def test_okx_derivatives_take_ccxt_form(shared_data):
    symbols = {event.symbol for event in replay(CRYPTOFEED_DIR, "okx").items}
    assert symbols == {"BTC/USDT", "UNI/USD:UNI", "BTC/USD:BTC-220527"}


def test_book_built_from_the_events_never_crosses(recorded):
    # A delta before its instrument's snapshot would be a bug of the replay.
    assert assert_books_never_cross(recorded.items, snapshot_first=True), (
        "every recording holds an L2 book"
    )


def test_snapshots_list_levels_best_first(recorded):
    for snapshot in recorded.of(BookSnapshot):
        bid_prices = [price for price, _ in snapshot.bids]
        ask_prices = [price for price, _ in snapshot.asks]
        assert bid_prices == sorted(bid_prices, reverse=True)
        assert ask_prices == sorted(ask_prices)


def test_trades_have_positive_price_size_and_a_side(recorded):
    for trade in recorded.of(Trade):
        assert isinstance(trade.price, Decimal) and trade.price > 0
        assert isinstance(trade.size, Decimal) and trade.size > 0
        assert trade.side in ("buy", "sell")
        assert trade.trade_id


def test_bbo_has_sizes_and_is_not_crossed(recorded):
    for bbo in recorded.of(BBO):
        assert 0 < bbo.bid_price < bbo.ask_price
        assert bbo.bid_size > 0 and bbo.ask_size > 0


def test_timestamps_are_nanoseconds_near_the_receive_time(recorded):
    for event in recorded.items:
        assert 1.6e18 < event.receive_ts < 1.7e18
        # Recorder clocks drift and snapshots are seconds old, but never by a minute.
        assert abs(event.exchange_ts - event.receive_ts) < 60 * 10**9


def test_binance_books_carry_update_ids_and_exchange_times(shared_data):
    replayed = replay(CRYPTOFEED_DIR, "binance")
    books = replayed.of(BookSnapshot) + replayed.of(BookDelta)
    assert all(book.seq is not None for book in books)
    # Diffs carry Binance's event time `E` (ms); the REST snapshot has none.
    assert all(delta.exchange_ts % 1_000_000 == 0 for delta in replayed.of(BookDelta))
    assert all(s.exchange_ts == s.receive_ts for s in replayed.of(BookSnapshot))


def test_coinbase_match_side_is_the_takers(shared_data):
    trades = replay(CRYPTOFEED_DIR, "coinbase").of(Trade)
    # Recorded {"type":"match","trade_id":1568268,"side":"sell",...,"product_id":"SKL-USD",
    # "time":"2021-04-17T16:43:37.121358Z"}: the resting order sold, so the taker bought.
    (trade,) = [t for t in trades if t.trade_id == "1568268"]
    assert trade.side == "buy"
    assert trade.symbol == "SKL/USD"
    assert (trade.price, trade.size) == (Decimal("0.791"), Decimal("450"))
    assert trade.exchange_ts == 1_618_677_817_121_358_000


def test_snapshot_fetched_over_rest_takes_the_rest_receive_time(shared_data):
    snapshots = replay(CRYPTOFEED_DIR, "bitstamp").of(BookSnapshot)
    # `.../order_book/sgbeur -> 1641343696.2410529: {...}` in BITSTAMP.http.0.0
    (sgb,) = [s for s in snapshots if s.symbol == "SGB/EUR"]
    assert sgb.receive_ts == 1_641_343_696_241_052_900


def test_replay_leaves_cryptofeeds_symbol_registry_as_it_found_it(shared_data):
    live_table = ({"BTC-USDT": "BTCUSDT"}, {})
    Symbols.set("BINANCE", *live_table)
    try:
        assert replay(CRYPTOFEED_DIR, "binance").stats.produced
        assert Symbols.get("BINANCE") == live_table
    finally:
        Symbols.data.pop("BINANCE")
    replay(CRYPTOFEED_DIR, "kraken")
    assert not Symbols.populated("KRAKEN")


def test_unknown_exchange_is_a_clear_error(shared_data):
    with pytest.raises(UnknownVenueError, match=r"unknown exchange 'mtgox'; known: .*bybit"):
        iter_recording(CRYPTOFEED_DIR, "mtgox")


def test_missing_recording_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"GEMINI\.0"):
        iter_recording(tmp_path, "gemini")


def test_corrupt_lines_become_dead_letters_and_replay_goes_on(tmp_path, shared_data):
    def corrupt(line: str) -> str:
        if "l2_updates" not in line:
            return line
        if '"symbol":"ANKRUSD"' in line:
            return line[: len(line) // 2] + "\n"  # cut short mid-JSON
        if '"symbol":"GRTUSD"' in line:
            return "no timestamp here\n"
        return line

    directory = corrupt_copy(tmp_path, "GEMINI", corrupt)
    replayed = replay(directory, "gemini")
    intact = EXPECTED["gemini"]
    stats = replayed.stats
    assert stats.accounted and stats.read == intact.read
    dead = replayed.of(DeadLetter)
    assert stats.failed == len(dead) > 0
    cut = [d for d in dead if "ANKRUSD" in d.raw]
    no_timestamp = [d for d in dead if "no timestamp" in d.raw]
    assert cut and no_timestamp
    assert all(d.source.startswith("cryptofeed:gemini:GEMINI.ws.1.0:") for d in dead)
    assert all(d.receive_ts is not None for d in cut)
    assert "not a recorded message" in no_timestamp[0].reason and no_timestamp[0].receive_ts is None
    # Other instruments are untouched.
    assert len([e for e in replayed.of(BookDelta) if e.symbol == "FIL/USD"]) == len(
        [e for e in replay(CRYPTOFEED_DIR, "gemini").of(BookDelta) if e.symbol == "FIL/USD"]
    )


def test_corrupted_book_level_fails_the_exchange_checksum(tmp_path, shared_data):
    # The first XBT/CHF (channel 464) bid update: a 9 before its size. Kraken's checksum,
    # which cryptofeed verifies, no longer matches the book.
    seen = []

    def corrupt(line: str) -> str:
        if not seen and line.split(": ", 1)[-1].startswith('[464,{"b":[["'):
            size_start = line.index('","', line.index('[["')) + 3
            seen.append(line[:size_start] + "9" + line[size_start:])
            return seen[0]
        return line

    replayed = replay(corrupt_copy(tmp_path, "KRAKEN", corrupt), "kraken")
    assert seen and replayed.stats.accounted
    (dead, *_) = replayed.of(DeadLetter)
    assert "BadChecksum" in dead.reason and dead.raw == seen[0].rstrip("\n")


def test_ticker_without_sizes_is_a_dead_letter(tmp_path, shared_data):
    # cryptofeed parses a bookTicker without its size field `B`; the BBO cannot be made.
    def corrupt(line: str) -> str:
        return line.replace(',"B":"', ',"X":"') if "@bookTicker" in line else line

    replayed = replay(corrupt_copy(tmp_path, "BINANCE", corrupt), "binance")
    assert not replayed.of(BBO)
    dead = replayed.of(DeadLetter)
    assert len(dead) == 84 == replayed.stats.failed
    assert "ticker" in dead[0].reason and "'B'" in dead[0].reason


def test_missing_rest_snapshot_is_a_dead_letter(tmp_path, shared_data):
    directory = corrupt_copy(tmp_path, "BINANCE", lambda line: line)
    (directory / "BINANCE.http.0.0").unlink()
    replayed = replay(directory, "binance")
    assert replayed.stats.accounted
    assert not replayed.of(BookSnapshot) and not replayed.of(BookDelta)
    reasons = {d.reason for d in replayed.of(DeadLetter)}
    assert any("GET https://api.binance.com/api/v3/depth?symbol=NKNUSDT" in r for r in reasons)
    assert replayed.of(BBO) and replayed.of(Trade)


def test_unusable_startup_data_fails_when_the_replay_is_made(tmp_path, shared_data):
    directory = corrupt_copy(tmp_path, "BINANCE", lambda line: line)
    startup = directory / "BINANCE.0"
    startup.write_text(startup.read_text().replace('"symbols":[', '"instruments":[', 1))
    with pytest.raises(ValueError, match=r"binance: cryptofeed cannot build its feed.*'symbols'"):
        iter_recording(directory, "binance")


def test_snapshot_missing_at_subscription_fails_the_replay(tmp_path, shared_data):
    # Bitstamp fetches its snapshots while subscribing: without them there is no book at all.
    directory = corrupt_copy(tmp_path, "BITSTAMP", lambda line: line)
    (directory / "BITSTAMP.http.0.0").unlink()
    replayed = iter_recording(directory, "bitstamp")
    with pytest.raises(ValueError, match=r"cannot subscribe.*response to GET .*/order_book/"):
        next(replayed)


@pytest.mark.parametrize(
    ("cryptofeed_symbol", "unified"),
    [
        ("BTC-USD", "BTC/USD"),
        ("BTC-USDT-PERP", "BTC/USDT:USDT"),
        ("UNI-USD-PERP", "UNI/USD:UNI"),
        ("BTC-USD-22K27", "BTC/USD:BTC-220527"),
        ("ETH-USDT-23H3", "ETH/USDT:USDT-230303"),
        ("BTC-USD-30000-22K27-call", "BTC/USD:BTC-220527-30000-C"),
        ("ETH-USDC-2500-23H3-put", "ETH/USDC:USDC-230303-2500-P"),
        ("BTC-JPY-FX", "BTC/JPY:JPY"),
        ("BTC-40000-21U24-call", "BTC/BTC:BTC-210924-40000-C"),  # Deribit: base is quote
    ],
)
def test_unified_symbol(cryptofeed_symbol, unified):
    assert unified_symbol(cryptofeed_symbol) == unified


@pytest.mark.parametrize(
    "bad", ["BTC", "BTC-", "-USD", "BTC-USD-30000-22K27-C", "BTC-USD-22A27", "BTC-USD-XX"]
)
def test_unified_symbol_rejects_what_it_cannot_map(bad):
    with pytest.raises(ValueError):
        unified_symbol(bad)


@given(st.integers(0, 2**40), st.text("0123456789", max_size=9))
def test_seconds_to_ns_is_exact(whole, fraction):
    text = f"{whole}.{fraction}" if fraction else str(whole)
    assert seconds_to_ns(text) == int(Decimal(text) * 1_000_000_000)


@pytest.mark.parametrize("bad", ["", "1.2.3", "12a.5", "-1.5", "1.-5", "1e9"])
def test_seconds_to_ns_rejects_non_timestamps(bad):
    with pytest.raises(ValueError):
        seconds_to_ns(bad)


def test_a_binary_frame_is_read_back_as_the_bytes_received():
    """cryptofeed's recorder prints binary frames (Huobi's gzip) as Python bytes literals."""
    frame = bytes([0x1F, 0x8B, 0x08, 0x27, 0x22, 0x5C, 0xFF])
    assert split_received(f"1645289384.9991329: {frame!r}") == (
        1645289384999132900, "1645289384.9991329", frame)
    assert split_received('1.5: {"b": 1}')[2] == '{"b": 1}'
    with pytest.raises(ValueError, match="unreadable binary frame"):
        split_received("1.5: b'\\x1f")


def test_two_recordings_of_one_name_in_two_folders_both_replay(tmp_path, shared_data):
    """Nothing is dropped for its name: each copy replays, and the stats add up."""
    from connectors.replay.recordings import Recordings

    copies = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for name in ("GEMINI.0", "GEMINI.ws.1.0"):
            shutil.copy(CRYPTOFEED_DIR / name, tmp_path / folder / name)
        copies.append(tmp_path / folder / "GEMINI.ws.1.0")
    once = Recordings([CRYPTOFEED_DIR / "GEMINI.ws.1.0"])
    one = list(once.events())
    twice = Recordings(copies)
    both = list(twice.events())
    assert len(both) == 2 * len(one) > 0
    assert twice.stats()["gemini"] == {key: 2 * value
                                       for key, value in once.stats()["gemini"].items()}
    assert len(twice.source_files()) == 2 * len(once.source_files())
