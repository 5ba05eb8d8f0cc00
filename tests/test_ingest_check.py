"""Ingest's per-instrument book check on real recorded events, and on events broken on purpose."""

from __future__ import annotations

from itertools import islice

import msgspec
import pytest

from connectors.replay.binance_hft import iter_events
from connectors.replay.cryptofeed_recording import iter_recording
from models.events import BookDelta, BookSnapshot, DeadLetter, decode
from models.ingest_check import InstrumentCheck
from tests.conftest import BINANCE_FILES, CRYPTOFEED_DIR


def admit_all(check: InstrumentCheck, events) -> list:
    out: list = []
    for event in events:
        check.admit(event, out)
    return out


@pytest.fixture(scope="module")
def kraken_book(shared_data) -> list:
    events = [e for e in iter_recording(CRYPTOFEED_DIR, "kraken")
              if isinstance(e, BookDelta | BookSnapshot)]
    key = events[0].key
    return [e for e in events if e.key == key]


def test_a_clean_stream_passes_untouched(kraken_book):
    check = InstrumentCheck(kraken_book[0].venue, kraken_book[0].symbol)
    assert admit_all(check, kraken_book) == kraken_book
    assert check.flagged == 0 and check.book.synced


def test_a_crossing_delta_is_published_and_dead_lettered(kraken_book):
    check = InstrumentCheck(kraken_book[0].venue, kraken_book[0].symbol)
    admit_all(check, kraken_book[:5])
    best_ask, size = check.book.best_ask()
    crossing = msgspec.structs.replace(kraken_book[5], bids=[(best_ask, size)], asks=[])
    out = admit_all(check, [crossing, *kraken_book[6:8]])
    assert out[0] is crossing
    letter = out[1]
    assert isinstance(letter, DeadLetter) and letter.reason.startswith("book_crossed:")
    assert decode(letter.raw) == crossing and letter.source == f"ingest:{crossing.key}"
    # Until a new snapshot the book stays empty rather than wrong; later deltas still go on.
    assert out[2:] == kraken_book[6:8] and check.book.best_bid() is None
    assert check.flagged == 1


def test_a_delta_without_the_ids_its_rule_needs_is_only_dead_lettered(shared_data):
    spot = next(path for path in BINANCE_FILES if "spot/btcusdt" in str(path))
    (delta,) = islice((e for e in iter_events(spot) if isinstance(e, BookDelta)), 1)
    snapshot = next(e for e in iter_events(spot) if isinstance(e, BookSnapshot))
    check = InstrumentCheck(delta.venue, delta.symbol)
    admit_all(check, [snapshot])
    half_sequenced = msgspec.structs.replace(delta, first_seq=None, prev_seq=7)
    (letter,) = admit_all(check, [half_sequenced])
    assert letter.reason.startswith("book_ids:") and "first_seq" in letter.reason


def test_cryptofeed_binance_deltas_apply_in_arrival_order(shared_data):
    # cryptofeed sequences Binance itself and gives no first update id: no rule error here.
    events = [e for e in iter_recording(CRYPTOFEED_DIR, "binance")
              if isinstance(e, BookDelta | BookSnapshot)]
    checks: dict[str, InstrumentCheck] = {}
    for event in events:
        check = checks.setdefault(event.key, InstrumentCheck(event.venue, event.symbol))
        assert admit_all(check, [event]) == [event]
    assert all(check.book.synced for check in checks.values())
