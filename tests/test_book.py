"""OrderBook and sequencing rules on hand-made events, plus property tests.

The real-data checks (book vs Binance bookTicker, gaps cut into the recorded stream) are in
test_replay_binance.py.
"""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.book import BookStatus, OrderBook, ticks
from models.book_view import BookView
from models.events import BookDelta, BookSnapshot
from models.sequencing import (
    APPLY,
    DEFAULT_RULE,
    GAP,
    BinanceSpotRule,
    BinanceUsdmRule,
    MissingUpdateIdError,
    UnsequencedRule,
    rule_named,
)
from tests.reference_book import ReferenceBook, assert_same_book, spot_streams

D = Decimal


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(price), D(size)) for price, size in pairs]


def snapshot(seq: int | None, bids=(("99", "1"),), asks=(("101", "1"),), venue="binance"):
    return BookSnapshot(
        venue=venue,
        symbol="BTC/USDT",
        exchange_ts=0,
        receive_ts=0,
        seq=seq,
        bids=levels(*bids),
        asks=levels(*asks),
    )


def delta(
    first: int | None, last: int | None, prev: int | None = None, bids=(), asks=(), venue="binance"
):
    return BookDelta(
        venue=venue,
        symbol="BTC/USDT",
        exchange_ts=0,
        receive_ts=0,
        seq=last,
        first_seq=first,
        prev_seq=prev,
        bids=levels(*bids),
        asks=levels(*asks),
    )


def spot_book() -> OrderBook:
    return OrderBook("binance", "BTC/USDT", BinanceSpotRule())


def usdm_book() -> OrderBook:
    return OrderBook("binanceusdm", "BTC/USDT:USDT", BinanceUsdmRule())


def test_named_rules_and_the_default_that_follows_the_ids():
    from connectors.venues import sequencing_rule

    assert isinstance(rule_named("binance-spot").venue_rule, BinanceSpotRule)
    assert isinstance(rule_named("binance-futures").venue_rule, BinanceUsdmRule)
    assert isinstance(rule_named("arrival"), UnsequencedRule)
    assert sequencing_rule("binance") is rule_named("binance-spot")
    assert sequencing_rule("binanceusdm") is sequencing_rule("binancecoinm")
    assert sequencing_rule("binancecoinm") is rule_named("binance-futures")
    assert sequencing_rule("kraken") is sequencing_rule("no-such-venue") is rule_named("arrival")
    with pytest.raises(ValueError, match="no sequencing rule 'x'"):
        rule_named("x")
    # Spot ids (U, u) follow the spot rule, futures ids (pu) the futures one, none: arrival.
    assert DEFAULT_RULE.check(delta(12, 15), 10, False) is GAP
    assert DEFAULT_RULE.check(delta(11, 15), 10, False) is APPLY
    assert DEFAULT_RULE.check(delta(12, 15, 9, venue="binanceusdm"), 10, True) is GAP
    assert DEFAULT_RULE.check(delta(12, 15, 10, venue="binanceusdm"), 10, True) is APPLY
    assert DEFAULT_RULE.check(delta(None, 15), 10, True) is APPLY


# -- Binance spot ---------------------------------------------------------------------------


def test_spot_buffers_until_snapshot_then_drops_stale_and_bridges():
    book = spot_book()
    assert book.apply(delta(1, 5, bids=[("98", "2")])) is BookStatus.BUFFERED
    assert book.apply(delta(6, 12, bids=[("99", "3")])) is BookStatus.BUFFERED
    assert not book.synced and book.best_bid() is None and book.pending == 2

    # 1..5 is inside the snapshot (stale); 6..12 bridges lastUpdateId + 1 = 11.
    assert book.apply(snapshot(10)) is BookStatus.APPLIED
    assert book.synced and book.seq == 12 and book.pending == 0
    assert book.best_bid() == (D("99"), D("3"))
    assert book.size_at("bid", D("98")) == 0
    assert book.stats.as_dict() == {
        "applied": 1,
        "buffered": 2,
        "crossed": 0,
        "gaps": 0,
        "resyncs": 0,
        "snapshots": 1,
        "stale": 1,
    }


def test_spot_continuity_and_stale_after_sync():
    book = spot_book()
    book.apply(snapshot(10))
    assert book.apply(delta(11, 11)) is BookStatus.APPLIED  # U == lastUpdateId + 1
    assert book.apply(delta(12, 15)) is BookStatus.APPLIED  # U == prev u + 1
    assert book.apply(delta(13, 15)) is BookStatus.STALE  # u <= book id
    assert book.apply(delta(14, 17, asks=[("102", "4")])) is BookStatus.APPLIED  # overlap
    assert book.seq == 17 and book.size_at("ask", D("102")) == D("4")


def test_changed_within_names_the_levels_the_last_apply_set_or_removed():
    """The paper venue skips matching a depth diff that changed none of its prices."""
    book = spot_book()
    book.apply(snapshot(10, bids=(("99", "1"), ("98", "2")), asks=(("101", "1"),)))

    def changed(side: str, lo: str, hi: str | None = None) -> bool:
        return book.changed_within(side, ticks(D(lo)), ticks(D(hi or lo)))

    assert changed("bid", "1") and changed("ask", "5000")  # a snapshot: every level
    book.apply(delta(11, 11, bids=[("98", "0"), ("96.5", "3")], asks=[("102.25", "1")]))
    assert changed("bid", "98") and changed("bid", "96.50") and changed("ask", "102.25")
    assert not changed("bid", "99") and not changed("bid", "97", "97.9")
    assert not changed("ask", "101") and not changed("ask", "96.5")  # the other side's price
    assert changed("bid", "90", "99")
    assert book.apply(delta(11, 11)) is BookStatus.STALE and not changed("bid", "98")
    assert pickle.loads(pickle.dumps(book)).changed_within("bid", 0, 1)  # unknown: every level
    assert ticks(D("61234.50")) == ticks(D("61234.5")) == 61234_5 * 10**17


def test_spot_gap_clears_book_and_resyncs_on_next_snapshot():
    book = spot_book()
    book.apply(snapshot(10))
    status = book.apply(delta(12, 13, bids=[("100", "1")]))  # 11 is missing
    assert status is BookStatus.GAP
    assert not book.synced and book.best_bid() is None and book.best_ask() is None
    assert book.pending == 1  # the gapping delta waits for the next snapshot
    assert book.apply(delta(14, 14)) is BookStatus.BUFFERED

    assert book.apply(snapshot(12, bids=[("98", "1")])) is BookStatus.APPLIED
    assert book.synced and book.seq == 14
    assert book.best_bid() == (D("100"), D("1"))
    assert book.stats.gaps == 1 and book.stats.resyncs == 1


def test_spot_first_delta_after_snapshot_must_cover_it():
    book = spot_book()
    book.apply(delta(15, 20))
    assert book.apply(snapshot(10)) is BookStatus.GAP  # 11..14 never arrived
    assert not book.synced and book.pending == 1


def test_sequenced_rules_reject_missing_ids():
    book = spot_book()
    book.apply(snapshot(10))
    with pytest.raises(MissingUpdateIdError):
        book.apply(delta(None, 11))
    book = usdm_book()
    book.apply(snapshot(None, venue="binanceusdm"))
    with pytest.raises(MissingUpdateIdError):
        book.apply(delta(5, 11, 4, venue="binanceusdm"))


# -- Binance USD-M --------------------------------------------------------------------------


def test_usdm_bridge_uses_u_at_least_last_update_id_then_pu_chain():
    book = usdm_book()
    book.apply(delta(1, 9, 0))
    book.apply(delta(10, 20, 9, bids=[("100", "2")]))
    assert book.apply(snapshot(20)) is BookStatus.APPLIED
    # u < lastUpdateId is stale; u == lastUpdateId with U <= it is the first applied event.
    assert book.stats.stale == 1 and book.stats.applied == 1 and book.seq == 20
    assert book.best_bid() == (D("100"), D("2"))
    assert book.apply(delta(25, 30, 20)) is BookStatus.APPLIED  # pu == previous u
    assert book.apply(delta(31, 33, 29)) is BookStatus.GAP
    assert not book.synced and book.best_bid() is None


def test_usdm_first_event_must_straddle_snapshot():
    book = usdm_book()
    book.apply(snapshot(20))
    assert book.apply(delta(21, 25, 20)) is BookStatus.GAP  # U > lastUpdateId


def test_unsequenced_applies_in_arrival_order():
    book = OrderBook("coinbase", "BTC/USD")
    assert book.apply(delta(None, None, bids=[("98", "1")])) is BookStatus.BUFFERED
    assert book.apply(snapshot(None)) is BookStatus.APPLIED
    assert book.levels("bid", 5) == levels(("99", "1"), ("98", "1"))
    assert book.apply(delta(None, None, bids=[("99", "0")])) is BookStatus.APPLIED
    assert book.best_bid() == (D("98"), D("1"))
    assert book.apply(snapshot(None, bids=[("97", "5")])) is BookStatus.APPLIED  # replaces
    assert book.levels("bid", 5) == levels(("97", "5"))


# -- crossing, stale snapshots, buffering ---------------------------------------------------


def test_crossing_delta_is_reported_and_requires_resync():
    book = spot_book()
    book.apply(snapshot(10))
    assert book.apply(delta(11, 11, bids=[("101", "1")])) is BookStatus.CROSSED
    assert not book.synced and book.best_bid() is None and book.stats.crossed == 1
    assert book.apply(delta(12, 12)) is BookStatus.BUFFERED
    assert book.apply(snapshot(12)) is BookStatus.APPLIED
    assert book.synced and book.stats.resyncs == 1 and book.stats.stale == 1


def test_crossed_snapshot_is_not_trusted():
    book = spot_book()
    assert book.apply(snapshot(10, bids=[("101", "1")], asks=[("101", "1")])) is BookStatus.CROSSED
    assert not book.synced and book.mid() is None


def test_older_snapshot_does_not_roll_back_a_synced_book():
    book = spot_book()
    book.apply(snapshot(10))
    book.apply(delta(11, 12, bids=[("100", "1")]))
    assert book.apply(snapshot(11)) is BookStatus.STALE
    assert book.seq == 12 and book.best_bid() == (D("100"), D("1"))
    assert book.apply(snapshot(20, bids=[("95", "1")])) is BookStatus.APPLIED  # newer replaces
    assert book.seq == 20 and book.best_bid() == (D("95"), D("1"))


def test_buffer_keeps_the_newest_deltas_up_to_its_limit():
    book = OrderBook("binance", "BTC/USDT", buffer_limit=3)
    for first in range(1, 11):
        book.apply(delta(first, first))
    assert book.pending == 3 and book.stats.buffered == 10
    assert book.apply(snapshot(7)) is BookStatus.APPLIED  # 8..10 were kept
    assert book.seq == 10


def test_apply_rejects_other_events():
    with pytest.raises(TypeError):
        spot_book().apply("not an event")  # type: ignore[arg-type]


# -- BookView -------------------------------------------------------------------------------


def test_book_view_queries():
    book = spot_book()
    book.apply(
        snapshot(
            1, bids=[("99", "1"), ("98.5", "2"), ("97", "3")], asks=[("101", "4"), ("103", "5")]
        )
    )
    view: BookView = book
    assert view.best_bid() == (D("99"), D("1"))
    assert view.best_ask() == (D("101"), D("4"))
    assert book.mid() == D("100")
    assert view.levels("bid", 2) == levels(("99", "1"), ("98.5", "2"))
    assert view.levels("ask", 10) == levels(("101", "4"), ("103", "5"))
    assert view.levels("bid", 0) == []
    assert view.size_at("bid", D("98.50")) == D("2")  # Decimal equality across exponents
    assert view.size_at("ask", D("102")) == 0
    with pytest.raises(ValueError):
        view.size_at("buy", D("99"))  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------

prices = st.integers(min_value=1, max_value=40).map(lambda ticks: D(ticks) / 4)
sizes = st.sampled_from([D(0), D("0.000"), D("0.5"), D("1"), D("2.25")])
level_lists = st.lists(st.tuples(prices, sizes), max_size=6)


@given(st.lists(st.tuples(level_lists, level_lists), max_size=40))
def test_random_deltas_match_a_reference_and_never_cross_silently(updates):
    book = OrderBook("sim", "SIM/USD")
    book.apply(snapshot(None, bids=(), asks=()))
    reference: dict[str, dict[Decimal, Decimal]] = {"bid": {}, "ask": {}}
    for bids, asks in updates:
        status = book.apply(
            BookDelta(
                venue="sim",
                symbol="SIM/USD",
                exchange_ts=0,
                receive_ts=0,
                bids=bids,
                asks=asks,
            )
        )
        if status is BookStatus.BUFFERED:
            continue
        for side, changes in (("bid", bids), ("ask", asks)):
            for price, size in changes:
                if size:
                    reference[side][price] = size
                else:
                    reference[side].pop(price, None)
        ref_bid = max(reference["bid"], default=None)
        ref_ask = min(reference["ask"], default=None)
        crossed = ref_bid is not None and ref_ask is not None and ref_bid >= ref_ask
        assert (status is BookStatus.CROSSED) == crossed
        if crossed:
            assert not book.synced and book.best_bid() is None
            # A fresh, uncrossed snapshot recovers; the reference restarts from it too.
            book.apply(snapshot(None, bids=(), asks=()))
            reference = {"bid": {}, "ask": {}}
            continue
        for side in ("bid", "ask"):
            expected = sorted(reference[side].items(), reverse=side == "bid")
            assert book.levels(side, 1000) == expected
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert best_bid is None or best_ask is None or best_bid[0] < best_ask[0]


@given(level_lists, level_lists)
def test_adding_then_removing_levels_returns_the_empty_book(bids, asks):
    bids = [(price, size) for price, size in bids if price < 5]
    asks = [(price, size) for price, size in asks if price >= 5]
    book = OrderBook("sim", "SIM/USD")
    book.apply(snapshot(None, bids=(), asks=()))
    book.apply(
        BookDelta(venue="sim", symbol="SIM/USD", exchange_ts=0, receive_ts=0, bids=bids, asks=asks)
    )
    removals = dict(
        bids=[(price, D(0)) for price, _ in bids], asks=[(price, D(0)) for price, _ in asks]
    )
    status = book.apply(
        BookDelta(venue="sim", symbol="SIM/USD", exchange_ts=0, receive_ts=0, **removals)
    )
    assert status is BookStatus.APPLIED
    assert book.levels("bid", 100) == [] and book.levels("ask", 100) == []
    assert book.mid() is None and book.synced


@given(
    st.lists(st.tuples(st.integers(1, 4), level_lists, level_lists), min_size=1, max_size=30),
    st.data(),
)
def test_spot_book_started_from_any_snapshot_point_equals_the_full_stream(batches, data):
    """Chop a contiguous id range into diffs; start a second book from a snapshot of the first
    taken at a random point, with some diffs from either side of it buffered before the
    snapshot arrives and the rest live: both books must agree."""
    deltas, next_id = [], 1
    for width, bids, asks in batches:
        deltas.append(
            BookDelta(
                venue="binance",
                symbol="BTC/USDT",
                exchange_ts=0,
                receive_ts=0,
                seq=next_id + width - 1,
                first_seq=next_id,
                bids=[level for level in bids if level[0] < 5],
                asks=[level for level in asks if level[0] >= 5],
            )
        )
        next_id += width
    full = spot_book()
    full.apply(snapshot(0, bids=(), asks=()))
    cut = data.draw(st.integers(0, len(deltas)))
    for item in deltas[:cut]:
        assert full.apply(item) is BookStatus.APPLIED
    taken = BookSnapshot(
        venue="binance",
        symbol="BTC/USDT",
        exchange_ts=0,
        receive_ts=0,
        seq=full.seq,
        bids=full.levels("bid", 1000),
        asks=full.levels("ask", 1000),
    )
    for item in deltas[cut:]:
        assert full.apply(item) is BookStatus.APPLIED

    first_buffered = cut - data.draw(st.integers(0, cut))
    snapshot_at = data.draw(st.integers(cut, len(deltas)))
    late = spot_book()
    for item in deltas[first_buffered:snapshot_at]:
        assert late.apply(item) is BookStatus.BUFFERED
    assert late.apply(taken) is BookStatus.APPLIED
    for item in deltas[snapshot_at:]:
        assert late.apply(item) is BookStatus.APPLIED
    assert late.synced and late.seq == full.seq
    for side in ("bid", "ask"):
        assert late.levels(side, 1000) == full.levels(side, 1000)


def test_default_binance_rule_applies_deltas_a_sequencing_source_already_checked():
    """cryptofeed's Binance deltas carry no `U`/`pu`: cryptofeed sequenced them itself."""
    book = OrderBook("binance", "BTC/USDT")
    book.apply(snapshot(10))
    unsequenced = BookDelta(
        venue="binance",
        symbol="BTC/USDT",
        exchange_ts=0,
        receive_ts=0,
        seq=None,
        bids=[(D("99"), D("1"))],
        asks=[],
    )
    assert book.apply(unsequenced) is BookStatus.APPLIED
    assert book.best_bid() == (D("99"), D("1"))


# -- the compiled book against a small reference book ------------------------------------------


@given(spot_streams(), st.integers(1, 6))
def test_compiled_book_equals_the_reference_on_any_spot_stream(events, limit):
    book = OrderBook("binance", "BTC/USDT", BinanceSpotRule(), buffer_limit=limit)
    reference = ReferenceBook(BinanceSpotRule(), limit)
    for event in events:
        assert book.apply(event) is reference.apply(event)
        assert_same_book(book, reference)


@given(spot_streams(), st.data())
def test_a_pickled_book_continues_like_the_original(events, data):
    """Bytewax snapshots the quote session, book included, and restores it after a crash."""
    cut = data.draw(st.integers(0, len(events)))
    book = OrderBook("binance", "BTC/USDT", BinanceSpotRule(), buffer_limit=4)
    for event in events[:cut]:
        book.apply(event)
    restored = pickle.loads(pickle.dumps(book))
    assert (restored.venue, restored.symbol) == ("binance", "BTC/USDT")
    for event in events[cut:]:
        assert restored.apply(event) is book.apply(event)
    assert restored.stats.as_dict() == book.stats.as_dict()
    assert (restored.synced, restored.seq, restored.pending) == (
        book.synced, book.seq, book.pending
    )
    for side in ("bid", "ask"):
        assert restored.levels(side, 10_000) == book.levels(side, 10_000)


def test_the_book_returns_the_decimals_it_was_given_and_refuses_inexact_prices():
    book = OrderBook("sim", "SIM/USD")
    bid = (D("0.00000001"), D("3"))
    book.apply(
        BookSnapshot(
            venue="sim", symbol="SIM/USD", exchange_ts=0, receive_ts=0,
            bids=[bid], asks=[(D("0.00000002"), D("1"))],
        )
    )
    assert book.best_bid() is bid  # no Decimal made on the way out
    assert book.mid() == D("0.000000015")
    for price in (D("1E-19"), D("NaN"), D("Infinity"), D("1E+21")):
        with pytest.raises(ValueError, match="1e-18 grid"):
            book.size_at("bid", price)
