"""`Levels`: depth levels parsed from the venue's JSON, against the `Decimal` path they replace.

The Binance decoder hands the compiled book `Levels` instead of lists of `(Decimal, Decimal)`
pairs. These tests hold the two paths equal: the pairs (value and exponent) against msgspec's
`Decimal`s for any number text, the events' encodings byte for byte, and the book fed either
way, level for level and touch for touch. The whole-recording checks (the book against
Binance's bookTicker) are in test_replay_binance.py.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from decimal import Decimal

import msgspec
import numpy as np
import pytest
import quoteflow_book
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.replay.binance_hft import iter_events
from models.book import OrderBook
from models.event_bounds import MAX_DECIMAL_EXPONENT, MAX_ITEMS, decimal_problem, problem
from models.events import (
    BookDelta,
    BookSnapshot,
    Levels,
    LevelsError,
    LevelTable,
    encode,
    to_builtins,
)
from models.sequencing import BinanceSpotRule
from tests.reference_book import ReferenceBook, assert_same_book, spot_streams

D = Decimal
_pairs = msgspec.json.Decoder(list[tuple[Decimal, Decimal]])

# Number texts as venues write them (Binance: "61234.50", "0.00000000"), and stranger ones.
number_texts = st.one_of(
    st.from_regex(r"\A[0-9]{1,6}\.[0-9]{1,10}\Z"),
    st.from_regex(r"\A-?([0-9]{1,12}(\.[0-9]{0,12})?|\.[0-9]{1,12})([eE][-+]?[0-9]{1,2})?\Z"),
    st.sampled_from(["0", "0.00000000", "0.00000010", "1E+2", "007.50", "-0.0", ".5", "5."]),
)
level_lists = st.lists(st.tuples(number_texts, number_texts), max_size=6)


def json_levels(pairs) -> bytes:
    return msgspec.json.encode([list(pair) for pair in pairs])


def as_levels(pairs: list[tuple[Decimal, Decimal]]) -> Levels:
    return Levels(json_levels((str(price), str(size)) for price, size in pairs))


def exact(pairs) -> list[tuple]:
    """Value and exponent of each number: what `==` between Decimals does not look at."""
    return [(price.as_tuple(), size.as_tuple()) for price, size in pairs]


def on_the_tick_grid(price: Decimal) -> bool:
    ticks = price.scaleb(18)
    return ticks == ticks.to_integral_value() and abs(ticks) < 2**127


def refusal(pairs: list[tuple[Decimal, Decimal]]) -> str | None:
    """Why `Levels` refuses these (msgspec's) pairs, as its message says, or None: the first
    level's price, then its size, out of range (`models.event_bounds`), then a price off the
    grid."""
    for price, size in pairs:
        if decimal_problem(price) or decimal_problem(size):
            return f"out of range \\(at most 1e{MAX_DECIMAL_EXPONENT + 1}\\)"
        if not on_the_tick_grid(price):
            return "finer than 1e-18"
    return None


@given(level_lists)
@example([("61234.50", "0.010"), ("0.00000010", "0.00000000")])
def test_levels_are_the_decimals_msgspec_makes_to_the_exponent(pairs):
    data = json_levels(pairs)
    expected = _pairs.decode(data)
    if refused := refusal(expected):
        with pytest.raises(LevelsError, match=refused):
            Levels(data)
        return
    levels = Levels(data)
    assert exact(levels) == exact(expected)
    assert [(str(p), str(s)) for p, s in levels] == [(str(p), str(s)) for p, s in expected]
    assert levels.texts() == [(str(p), str(s)) for p, s in expected]
    assert levels.json() == msgspec.json.Encoder(decimal_format="string").encode(expected)


@given(level_lists)
def test_levels_behave_as_the_list_of_pairs(pairs):
    expected = _pairs.decode(json_levels(pairs))
    if refusal(expected):
        return
    levels = Levels(json_levels(pairs))
    assert isinstance(levels, Sequence)
    assert len(levels) == len(expected) and bool(levels) == bool(expected)
    assert levels == expected and expected == levels
    assert (levels != expected) is False and (expected != levels) is False
    assert list(levels) == expected and levels[:2] == expected[:2]
    assert levels[::-1] == expected[::-1]
    for i in range(-len(expected), len(expected)):
        assert levels[i] == expected[i]
    with pytest.raises(IndexError):
        levels[len(expected)]
    assert repr(levels) == repr(expected)
    for copied in (pickle.loads(pickle.dumps(levels)), copy.deepcopy(levels)):
        assert type(copied) is Levels and exact(copied) == exact(expected)
    assert levels != [*expected, (D(1), D(1))]
    with pytest.raises(TypeError):
        hash(levels)


@given(level_lists, level_lists)
def test_book_events_encode_byte_for_byte_as_with_lists(bids, asks):
    texts = [bids, asks]
    lists = [_pairs.decode(json_levels(side)) for side in texts]
    if any(map(refusal, lists)):
        return
    parsed = [Levels(json_levels(side)) for side in texts]
    for kind in (BookSnapshot, BookDelta):
        fields = dict(venue="binance", symbol="BTC/USDT", exchange_ts=1, receive_ts=2, seq=3)
        with_lists = kind(**fields, bids=lists[0], asks=lists[1])
        with_levels = kind(**fields, bids=parsed[0], asks=parsed[1])
        assert encode(with_levels) == encode(with_lists)
        assert msgspec.json.encode(to_builtins(with_levels)) == msgspec.json.encode(
            to_builtins(with_lists))
        assert with_levels == with_lists and with_lists == with_levels
        assert pickle.loads(pickle.dumps(with_levels)) == with_lists


def with_levels(event):
    return msgspec.structs.replace(event, bids=as_levels(event.bids), asks=as_levels(event.asks))


def shown(book: OrderBook) -> tuple:
    """Everything the book shows, each number as its text (exponent included)."""
    def texts(pairs):
        return [(str(p), str(s)) for p, s in pairs]
    touch = [book.best_bid(), book.best_ask()]
    return (
        book.synced, book.seq, book.pending, book.stats.as_dict(),
        texts(book.levels("bid", 10_000)), texts(book.levels("ask", 10_000)),
        texts(pair for pair in touch if pair is not None), str(book.mid()),
    )


@given(spot_streams(), st.integers(1, 6))
def test_a_book_fed_levels_equals_the_book_fed_decimals(events, limit):
    by_decimals = OrderBook("binance", "BTC/USDT", BinanceSpotRule(), buffer_limit=limit)
    by_levels = OrderBook("binance", "BTC/USDT", BinanceSpotRule(), buffer_limit=limit)
    reference = ReferenceBook(BinanceSpotRule(), limit)
    for event in events:
        status = by_decimals.apply(event)
        assert by_levels.apply(with_levels(event)) is status
        assert reference.apply(event) is status
        assert shown(by_levels) == shown(by_decimals)
        assert_same_book(by_levels, reference)
        for price, _ in reference.levels("bid"):
            assert str(by_levels.size_at("bid", price)) == str(by_decimals.size_at("bid", price))


@given(spot_streams(), st.data())
def test_a_pickled_book_of_levels_continues_like_the_original(events, data):
    events = [with_levels(event) for event in events]
    cut = data.draw(st.integers(0, len(events)))
    book = OrderBook("binance", "BTC/USDT", BinanceSpotRule(), buffer_limit=4)
    for event in events[:cut]:
        book.apply(event)
    restored = pickle.loads(pickle.dumps(book))
    for event in events[cut:]:
        assert restored.apply(event) is book.apply(event)
    assert shown(restored) == shown(book)


def test_a_level_read_twice_is_the_same_pair():
    """The book makes a level's pair once, on its first read, and hands out that one."""
    book = OrderBook("binance", "BTC/USDT")
    book.apply(BookSnapshot(
        venue="binance", symbol="BTC/USDT", exchange_ts=0, receive_ts=0, seq=1,
        bids=Levels(b'[["99.50","0.010"]]'), asks=Levels(b'[["100","1.0"]]'),
    ))
    assert book.best_bid() is book.best_bid() is book.levels("bid", 1)[0]
    assert exact([book.best_bid()]) == exact([(D("99.50"), D("0.010"))])
    assert book.mid() == D("99.75")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b'[["NaN","1"]]', "expected a decimal number in quotes at byte 2"),
        (b'[[-0,"1"]]', "expected a decimal number in quotes at byte 2"),
        (b'[["1","1","1"]]', "expected ']' after the size"),
        (b'[["1E-19","1"]]', "a price finer than 1e-18"),
        (b'{"1":"1"}', "expected an array of levels at byte 0"),
        (b'[["1","1"]] [', "unexpected text after the levels"),
        (b'[["1\\u0030","1"]]', "expected a decimal number"),
    ],
)
def test_malformed_levels_are_refused_with_where(data, where):
    with pytest.raises(LevelsError, match="depth levels: " + where):
        Levels(data)
    assert issubclass(LevelsError, ValueError)


def test_the_crates_bound_is_event_bounds_own():
    """`Levels` keeps the bound as a Rust constant; it must be the one every event is held to."""
    assert quoteflow_book.MAX_DECIMAL_EXPONENT == MAX_DECIMAL_EXPONENT


@pytest.mark.parametrize("number", [
    "1e31", "-1e31", "1e40", "10e30", "0.1e32", "9" * 32, "1E+2147483647",
    "0" * 10_000 + "1e40",  # leading zeros count for nothing
])
def test_numbers_of_1e31_or_more_are_refused_naming_the_number(number):
    for data in (f'[["1","{number}"]]', f'[["{number}","1"]]'):
        with pytest.raises(LevelsError) as refused:
            Levels(data.encode())
        message = str(refused.value)
        assert message.startswith(f"depth levels: {number[:40]}")
        assert "is out of range (at most 1e31) at byte" in message
        assert len(message) < 200


@pytest.mark.parametrize("number", [
    "1e999999999999", "-1e-999999999999", "1" * 10_000, "0." + "1" * 10_000,
    "1e" + "9" * 10_000, "1.5e-2147483648",
])
def test_numbers_past_the_parser_are_refused_not_overflowed(number):
    with pytest.raises(LevelsError, match="expected a decimal number"):
        Levels(f'[["1","{number}"]]'.encode())


def test_numbers_up_to_the_bound_and_zeros_of_any_exponent_are_taken():
    sizes = ["1e30", "-9.999e30", "9" * 31, "0e99", "-0E+2147483647", "1e-40"]
    levels = Levels(json_levels(("1", size) for size in sizes))
    assert exact(levels) == exact((D(1), D(size)) for size in sizes)


def test_event_bounds_takes_levels_as_checked_and_counts_them():
    fields = dict(venue="binance", symbol="BTC/USDT", exchange_ts=1, receive_ts=2, seq=3)
    event = BookDelta(**fields, bids=Levels(b'[["1","2"]]'), asks=Levels(b"[]"))
    assert problem(event) is None
    too_many = [("1", "1")] * (MAX_ITEMS + 1)
    as_levels_ = BookDelta(**fields, bids=Levels(json_levels(too_many)), asks=[])
    as_pairs = BookDelta(**fields, bids=_pairs.decode(json_levels(too_many)), asks=[])
    assert problem(as_levels_) == problem(as_pairs) == (
        f"$.bids: {MAX_ITEMS + 1} items, at most {MAX_ITEMS}")


def test_a_depth_diff_with_a_malformed_level_is_a_dead_letter(tmp_path):
    diff = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,'
            b'"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["61234.5","1"]],"a":[["inf","1"]]}}')
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"1000 " + diff + b"\n" + b"1001 " + diff.replace(b'"inf"', b'"1"') + b"\n")
    bad, good = iter_events(path)
    assert bad.reason.startswith("bad_message: depth levels: expected a decimal number in q")
    assert type(good) is BookDelta and type(good.bids) is Levels
    assert good.bids == [(D("61234.5"), D(1))] and good.asks == [(D(1), D(1))]


def test_a_level_table_gives_levels_or_none_for_a_price_off_the_grid():
    """The event cache's table: each number text once, levels as codes into them."""
    texts = ["61234.50", "0.010", "0E-8", "1E-19"]
    table = LevelTable(texts, np.array([0, 0, 3], np.int32), np.array([1, 2, 1], np.int32))
    expected = [(D("61234.50"), D("0.010")), (D("61234.50"), D("0E-8"))]
    assert exact(table.levels(0, 2)) == exact(expected)
    assert type(table.levels(1, 1)) is Levels and table.levels(1, 1) == []
    assert table.levels(2, 3) is None  # the caller keeps its Decimal pairs
    out_of_range = LevelTable(["1", "1e31", "0E+99"], np.array([0, 0], np.int32),
                              np.array([2, 1], np.int32))
    assert exact(out_of_range.levels(0, 1)) == exact([(D(1), D("0E+99"))])
    assert out_of_range.levels(0, 2) is None
    with pytest.raises(IndexError):
        table.levels(2, 4)
    with pytest.raises(IndexError):
        LevelTable(texts, np.array([9], np.int32), np.array([0], np.int32)).levels(0, 1)
