"""The order book's contract in plain Python, to check `models.book`'s compiled book against:
a reference book, Binance spot streams to feed both (hypothesis strategies), and the check
that the two hold the same book.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from hypothesis import strategies as st

from models.book import BookStatus, OrderBook
from models.events import BookDelta, BookSnapshot
from models.sequencing import APPLY, STALE

D = Decimal


class ReferenceBook:
    """The book's contract in plain Python: a dict per side keyed by `Decimal`, sorted when
    read; the same sequencing rule objects decide. Slow and obviously right."""

    def __init__(self, rule, limit: int = 10_000) -> None:
        self.rule = rule
        self.sides: dict[str, dict[Decimal, Decimal]] = {"bid": {}, "ask": {}}
        self.pending: deque[BookDelta] = deque(maxlen=limit)
        self.seq: int | None = None
        self.synced = self.bridged = self.was_broken = False
        self.stats = dict.fromkeys(
            ("applied", "buffered", "crossed", "gaps", "resyncs", "snapshots", "stale"), 0
        )

    def levels(self, side: str) -> list[tuple[Decimal, Decimal]]:
        return sorted(self.sides[side].items(), reverse=side == "bid")

    def _update(self, event) -> None:
        for side, changes in (("bid", event.bids), ("ask", event.asks)):
            for price, size in changes:
                if size:
                    self.sides[side][price] = size
                else:
                    self.sides[side].pop(price, None)

    def _lose_sync(self, status: BookStatus) -> BookStatus:
        self.stats["gaps" if status is BookStatus.GAP else "crossed"] += 1
        self.sides = {"bid": {}, "ask": {}}
        self.seq, self.synced, self.bridged, self.was_broken = None, False, False, True
        return status

    def _crossed(self) -> bool:
        bids, asks = self.sides["bid"], self.sides["ask"]
        return bool(bids and asks and max(bids) >= min(asks))

    def _delta(self, event: BookDelta) -> BookStatus:
        verdict = self.rule.check(event, self.seq, self.bridged)
        if verdict is STALE:
            self.stats["stale"] += 1
            return BookStatus.STALE
        if verdict is not APPLY:
            self.pending.appendleft(event)
            return self._lose_sync(BookStatus.GAP)
        self._update(event)
        self.seq, self.bridged = event.seq, True
        if self._crossed():
            return self._lose_sync(BookStatus.CROSSED)
        self.stats["applied"] += 1
        return BookStatus.APPLIED

    def apply(self, event) -> BookStatus:
        if type(event) is BookDelta:
            if not self.synced:
                self.pending.append(event)
                self.stats["buffered"] += 1
                return BookStatus.BUFFERED
            return self._delta(event)
        if self.synced and event.seq is not None and event.seq <= (self.seq or 0):
            self.stats["stale"] += 1
            return BookStatus.STALE
        self.sides = {"bid": {}, "ask": {}}
        self._update(event)
        self.seq, self.bridged = event.seq, False
        if self._crossed():
            return self._lose_sync(BookStatus.CROSSED)
        self.synced = True
        self.stats["snapshots"] += 1
        if self.was_broken:
            self.stats["resyncs"] += 1
            self.was_broken = False
        while self.pending:
            status = self._delta(self.pending.popleft())
            if status in (BookStatus.GAP, BookStatus.CROSSED):
                return status
        return BookStatus.APPLIED


# One grid, many spellings of a price: the book keeps ticks, so 98.5, 98.50 and 985E-1 are
# one level; a fine grid and a large price check the integer range.
grid_prices = st.one_of(
    st.integers(1, 80).map(lambda ticks: D(ticks) / 4),
    st.integers(1, 80).map(lambda ticks: (D(ticks) / 4).quantize(D("0.00000001"))),
    st.integers(1, 80).map(lambda ticks: D(f"{ticks * 25}E-2")),
    st.integers(1, 80).map(lambda ticks: D(ticks) / 4 + D("123456789012")),
    st.integers(1, 80).map(lambda ticks: D(ticks) * D("1E-18")),
)
grid_sizes = st.sampled_from(
    [D(0), D("0.000"), D("0E-8"), D("0.001"), D("1"), D("2.25"), D("1E+3")]
)
grid_levels = st.lists(st.tuples(grid_prices, grid_sizes), max_size=5)


@st.composite
def spot_streams(draw):
    """Snapshots and diffs with update ids that mostly follow on, sometimes overlap, repeat
    or skip (gaps), as a Binance spot feed can."""
    events, last = [], 0
    for _ in range(draw(st.integers(1, 20))):
        bids, asks = draw(grid_levels), draw(grid_levels)
        if draw(st.integers(0, 9)) == 0:
            seq = max(0, last + draw(st.integers(-3, 3)))
            events.append(
                BookSnapshot(
                    venue="binance", symbol="BTC/USDT", exchange_ts=0, receive_ts=0,
                    seq=seq, bids=bids, asks=asks,
                )
            )
            continue
        first = max(1, last + 1 + draw(st.integers(-2, 2)))
        last = first + draw(st.integers(0, 3))
        events.append(
            BookDelta(
                venue="binance", symbol="BTC/USDT", exchange_ts=0, receive_ts=0,
                seq=last, first_seq=first, bids=bids, asks=asks,
            )
        )
    return events


def assert_same_book(book: OrderBook, reference: ReferenceBook) -> None:
    """The compiled book holds what the reference does: sync state, stats and every level."""
    assert (book.synced, book.seq, book.pending) == (
        reference.synced, reference.seq, len(reference.pending)
    )
    assert book.stats.as_dict() == reference.stats
    for side in ("bid", "ask"):
        expected = reference.levels(side)
        assert book.levels(side, 10_000) == expected
        assert book.levels(side, 3) == expected[:3]
        assert (book.best_bid() if side == "bid" else book.best_ask()) == (
            expected[0] if expected else None
        )
        for price, size in expected:
            assert book.size_at(side, price.normalize()) == size
