"""The normalized event cache (connectors/replay/event_cache.py) on the shared recordings:
the events it serves equal the decoder's, a changed recording or decoder is a miss, and a
backtest from the cache fills and earns exactly what one from the raw file does."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import islice
from pathlib import Path

import pytest

from connectors.replay import event_cache
from connectors.replay.event_cache import CachedRecordings, open_recordings
from connectors.replay.recordings import Recordings
from models.events import BookSnapshot, DeadLetter, Levels, encode
from quoteflow.backtest import run_backtest
from quoteflow.sessions import TradingOptions
from tests.conftest import CRYPTOFEED_DIR, SHARED_DATA
from tests.recording_slices import slice_recording

USDM_BTC = SHARED_DATA / "binance/usdm/btcusdt_20240808.gz"
SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
COIN_M = SHARED_DATA / "binance/cm/ethusd_perp_20240808.gz"


def _decoded(paths) -> tuple[list, dict]:
    recordings = Recordings(paths)
    events = list(recordings.events())
    return events, recordings.stats()


def _cached(paths, cache: Path) -> tuple[list, dict, bool]:
    recordings = CachedRecordings(paths, cache)
    events = list(recordings.events())
    return events, recordings.stats(), recordings.hit


@pytest.mark.parametrize("paths", [
    [USDM_BTC],
    [SPOT_ETH, COIN_M],  # two venues merged by receive time
    [CRYPTOFEED_DIR / "KRAKEN.ws.50.0", CRYPTOFEED_DIR / "COINBASE.ws.28.0"],
], ids=["usdm", "spot+coin-m", "cryptofeed"])
def test_cached_events_equal_the_decoded_ones(shared_data, tmp_path, paths):
    decoded, stats = _decoded(paths)
    first, first_stats, first_hit = _cached(paths, tmp_path)
    again, again_stats, again_hit = _cached(paths, tmp_path)
    assert (first_hit, again_hit) == (False, True)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    assert first == decoded and again == decoded  # every field
    assert [type(e) for e in again] == [type(e) for e in decoded]
    assert list(map(encode, again)) == list(map(encode, decoded))  # Decimal exponents too
    assert first_stats == stats and again_stats == stats


def test_dead_letters_and_their_stats_come_back_whole(shared_data, tmp_path):
    damaged = slice_recording(
        SPOT_ETH, tmp_path / "eth.gz", 2000,
        b"not-a-time {}\n1723161300000000000 {\"stream\": \"ethusdt@depth\", \"data\": {}}\n"
        b"1723161300000000001 \xff\xfe\n",
    )
    decoded, stats = _decoded([damaged])
    assert sum(isinstance(e, DeadLetter) for e in decoded) == 3
    _cached([damaged], tmp_path / "cache")
    again, again_stats, hit = _cached([damaged], tmp_path / "cache")
    assert hit and again == decoded and again_stats == stats


def test_a_changed_recording_or_decoder_is_a_miss(shared_data, tmp_path, monkeypatch):
    recording = slice_recording(SPOT_ETH, tmp_path / "eth.gz", 1000)
    cache = tmp_path / "cache"
    _cached([recording], cache)
    assert _cached([recording], cache)[2] is True
    slice_recording(SPOT_ETH, recording, 1200)  # rewritten in place, same name
    events, _, hit = _cached([recording], cache)
    assert hit is False and events == _decoded([recording])[0]
    assert _cached([recording], cache)[2] is True
    monkeypatch.setattr(event_cache, "decoder_version", lambda: "another decoder")
    assert _cached([recording], cache)[2] is False


def test_a_damaged_entry_is_decoded_again_and_an_unfinished_replay_writes_nothing(
    shared_data, tmp_path
):
    recording = slice_recording(SPOT_ETH, tmp_path / "eth.gz", 1000)
    cache = tmp_path / "cache"
    replay = CachedRecordings([recording], cache)
    list(islice(replay.events(), 10))  # stopped early: no entry
    assert not cache.exists() or not any(cache.iterdir())
    _cached([recording], cache)
    entry = next(cache.glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:1000])
    events, _, hit = _cached([recording], cache)
    assert hit is False and events == _decoded([recording])[0]
    assert _cached([recording], cache)[2] is True


def test_open_recordings_without_a_directory_is_the_plain_replay(shared_data):
    assert type(open_recordings([SPOT_ETH], None)) is Recordings


def test_a_backtest_from_the_cache_fills_and_earns_the_same(shared_data, tmp_path):
    options = TradingOptions(strategy="avellaneda-stoikov-infinite")
    summaries, fills = [], []
    for run, cache in enumerate((None, tmp_path / "cache", tmp_path / "cache")):
        fills_file = tmp_path / f"fills-{run}.jsonl"
        summary = run_backtest([SPOT_ETH], options, cache_dir=cache, fills_out=fills_file)
        summaries.append({k: v for k, v in summary.items()
                          if k not in ("wall_seconds", "events_per_second")})
        fills.append(fills_file.read_text())
    assert summaries[0]["fills"] > 0
    assert summaries[1] == summaries[0] and summaries[2] == summaries[0]
    assert fills[1] == fills[0] and fills[2] == fills[0]
    assert json.dumps(summaries[2], default=str) == json.dumps(summaries[0], default=str)


def test_the_decoder_version_covers_a_compiled_package(tmp_path, monkeypatch):
    """A rebuilt extension (maturin's layout: a package with the library beside __init__.py)
    is a new decoder version even when no Python source changed."""
    package = tmp_path / "fake_native"
    package.mkdir()
    (package / "__init__.py").write_text("from .fake_native import *\n")
    library = package / "fake_native.cpython-311-x86_64-linux-gnu.so"
    library.write_bytes(b"build one")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(event_cache, "_DECODER_EXTENSIONS", ("fake_native",))
    before = event_cache.decoder_version()
    assert event_cache.decoder_version() == before
    library.write_bytes(b"build two")
    assert event_cache.decoder_version() != before


def test_book_sides_come_back_as_levels_unless_a_price_is_off_the_grid(tmp_path):
    """The book reads a cached side's `Levels` without a Decimal; a side `Levels` does not
    take (a price finer than 1e-18, which a decoder's list may hold) stays Decimal pairs."""
    def snapshot(bids):
        return BookSnapshot(venue="sim", symbol="SIM/USD", exchange_ts=1, receive_ts=2, seq=3,
                            bids=bids, asks=[(Decimal("101.0"), Decimal("0E-8"))])
    events = [snapshot(Levels(b'[["99.50","0.010"]]')),
              snapshot([(Decimal("1E-19"), Decimal("1")), (Decimal("99.5"), Decimal("2"))])]
    writer = event_cache._Writer()
    for event in events:
        writer.add(event)
    path = tmp_path / "entry.npz"
    writer.write(path, {})
    loaded, _ = event_cache._load(path)
    assert loaded == events and list(map(encode, loaded)) == list(map(encode, events))
    assert [type(e.bids) for e in loaded] == [Levels, list]
    assert type(loaded[1].asks) is Levels
