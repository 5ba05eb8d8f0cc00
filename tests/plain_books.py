"""Books rebuilt from L2 events the plain way (no sequencing rule), to check what a replay
produced or a topic holds without trusting `models.book` to judge itself."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from models.events import BookDelta, BookSnapshot


def assert_books_never_cross(events: Iterable, *, snapshot_first: bool = False) -> int:
    """Each instrument's book from its snapshots and deltas (a delta's size replaces the
    level's, zero removes it) never crosses, and deltas carry Decimal prices above 0 and
    sizes of at least 0. A delta before its instrument's first snapshot fails with
    `snapshot_first`, and is skipped without it. Returns how many books were built."""
    books: dict[str, tuple[dict, dict]] = {}
    for event in events:
        if isinstance(event, BookSnapshot):
            books[event.key] = (dict(event.bids), dict(event.asks))
        elif isinstance(event, BookDelta) and (snapshot_first or event.key in books):
            assert event.key in books, f"{event.key}: a delta before the snapshot"
            for side, levels in zip(books[event.key], (event.bids, event.asks), strict=True):
                for price, size in levels:
                    assert isinstance(price, Decimal) and isinstance(size, Decimal)
                    assert price > 0 and size >= 0
                    if size:
                        side[price] = size
                    else:
                        side.pop(price, None)
        else:
            continue
        bids, asks = books[event.key]
        if bids and asks:
            assert max(bids) < min(asks), f"{event.key} crossed at {event.receive_ts}"
    return len(books)
