"""md.book's fast decode (`connectors.kafka.book_wire`): `Levels` sides, and exactly the
event or the dead letter the general decode gives.

The general decode is what a topic without the fast path gets: quoteflow's decoder reads a
topic it does not own (`x.foreign`) with any event type allowed.
"""

from __future__ import annotations

from itertools import islice

from hypothesis import example, given
from hypothesis import strategies as st

from connectors.kafka import WireDecoder
from connectors.replay.recordings import Recordings
from models.event_bounds import MAX_ITEMS
from models.events import BookDelta, BookSnapshot, DeadLetter, Levels, encode
from tests.conftest import SHARED_DATA

SPOT_ETH = SHARED_DATA / "binance" / "spot" / "ethusdt_20240808.gz"
FOREIGN = "x.foreign"


def _both(value: bytes):
    decoder = WireDecoder()
    return decoder.decode(value, "md.book", 0, 0, 7), decoder.decode(value, FOREIGN, 0, 0, 7)


def _same(fast, general) -> None:
    if type(general) is DeadLetter:
        assert type(fast) is DeadLetter
        assert fast.reason == general.reason and fast.raw == general.raw
    else:
        assert fast == general and type(fast) is type(general)


def test_real_depth_events_decode_with_levels_sides_equal_to_the_pairs(shared_data):
    books = [e for e in islice(Recordings([SPOT_ETH]).events(), 20_000)
             if type(e) in (BookDelta, BookSnapshot)]
    assert {type(e) for e in books} == {BookDelta, BookSnapshot}
    for event in books:
        fast, general = _both(encode(event))
        assert type(fast.bids) is Levels and type(fast.asks) is Levels
        assert type(general.bids) is list
        assert fast == general == event
        # The levels keep the venue's text, so the event goes back on the wire unchanged.
        assert encode(fast) == encode(general)


def _delta(bids: str, asks: str = "[]") -> bytes:
    return (b'{"type":"book_delta","v":1,"venue":"binance","symbol":"ETH/USDT",'
            b'"exchange_ts":1,"receive_ts":2,"seq":5,"bids":%s,"asks":%s}'
            % (bids.encode(), asks.encode()))


def test_what_levels_refuses_goes_the_general_way():
    cases = {
        '[["1","1e31"]]': "out_of_bounds",  # an exponent reaching the bound
        '[["1","1e40"]]': "out_of_bounds",
        '[["-1e31","1"]]': "out_of_bounds",  # a price too
        '[["1","1e999999999999"]]': "out_of_bounds",  # past Levels' i32 exponent
        '[["1","1E+5"]]': None,  # a positive exponent under it: valid
        '[["1","0e99"]]': None,  # a zero, whatever its exponent
        '[["1","%s"]]' % ("9" * 32): "out_of_bounds",  # 32 digits: 1e31 or more
        '[["1","%s"]]' % ("0" * 1000 + "9" * 32): "out_of_bounds",
        '[["1","%s"]]' % ("9" * 31): None,
        '[["1","%s"]]' % ("9" * 1000): "out_of_bounds",  # a long digit run
        '[["1","0.%s1"]]' % ("0" * 40): None,  # a long fraction: tiny, valid
        '[["1","NaN"]]': "out_of_bounds",
        '[["1",1]]': None,  # a bare number: msgspec reads it, Levels does not
        '[["1"]]': "invalid",
        '[["1","0E-8"],["2.50","-3"]]': None,
        '[["1.0000000000000000001","1"]]': None,  # a price off Levels' 1e-18 grid
    }
    for bids, problem in cases.items():
        fast, general = _both(_delta(bids))
        _same(fast, general)
        if problem is None:
            assert type(fast) is BookDelta, (bids, fast)
        else:
            assert fast.reason.startswith(problem), (bids, fast.reason)


def test_numbers_within_the_bound_take_the_fast_path():
    for number in ("1E+5", "1e30", "-9.9e30", "0e99", "9" * 31, "0" * 1000 + "1"):
        fast = WireDecoder().decode(_delta(f'[["1","{number}"]]'), "md.book", 0, 0, 7)
        assert type(fast) is BookDelta and type(fast.bids) is Levels, number


def test_too_many_levels_is_the_same_dead_letter():
    """`Levels` takes any count; the event's bounds check counts its levels as a list's."""
    levels = ",".join(['["1","1"]'] * (MAX_ITEMS + 1))
    value = _delta(f"[{levels}]")
    fast, general = _both(value)
    _same(fast, general)
    assert fast.reason.startswith(
        f"out_of_bounds: $.bids: {MAX_ITEMS + 1} items, at most {MAX_ITEMS} ")


def test_other_fields_are_still_bounded():
    fast, general = _both(_delta("[]").replace(b'"ETH/USDT"', b'"ETH\\u0000USDT"'))
    _same(fast, general)
    assert fast.reason.startswith("out_of_bounds: $.symbol")


_number = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{0,40})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    # Exponents far past the bound and i32, both signs, on zeros too.
    st.from_regex(r"-?[01](\.[0-9]{0,3})?[eE][+-]?[0-9]{1,14}", fullmatch=True),
    st.builds(lambda zeros, digits: "0" * zeros + "9" * digits,
              st.integers(0, 2000), st.integers(1, 2000)),  # long digit runs
    st.sampled_from(["0E-8", "1e31", "1e40", "0e99", "-1e31", "1e30", "9.99e30", "-0E+99",
                     "1E+2147483647", "", " 1", "1 ", "--1", "1.2.3", "\\u0031"]),
)
_level = st.tuples(_number, _number).map(lambda pair: f'["{pair[0]}","{pair[1]}"]')


@given(st.lists(_level, max_size=4), st.lists(_level, max_size=4))
# A large zero on the general way's item-by-item walk (the sum of the side reaches 1e31):
# models.event_bounds once refused it there, with the reason "None".
@example([], ['["0E-8","9.99e30"]', '["0e99","1e30"]'])
def test_any_levels_decode_as_the_general_way_does(bids, asks):
    _same(*_both(_delta(f"[{','.join(bids)}]", f"[{','.join(asks)}]")))


@given(st.binary(max_size=200))
def test_any_bytes_decode_as_the_general_way_does(value):
    _same(*_both(_delta(value.decode("latin-1").replace("\\", "").replace('"', ""))))
