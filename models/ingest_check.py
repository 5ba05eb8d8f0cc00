"""Ingest's check of each instrument's L2 stream: a book kept under the venue's sequencing rule.

Ingest publishes every well-formed market event in the order the venue sent it, including a
book delta that breaks the book, so every consumer's book (built with the same rules) loses
sync at the same event and resyncs on the same next snapshot. Withholding that delta would be
worse: on a venue without update ids a consumer could not tell it missed one and would go on
applying deltas to a silently wrong book. What breaks the book is also reported as a dead
letter (reason `book_gap` or `book_crossed`, the event's JSON as `raw`), so it is counted and
seen. A delta whose update ids are half missing cannot be checked at all: it is dead-lettered
(`book_ids`) instead of published.

Which rule: a delta that carries Binance's update ids (`first_seq`, `prev_seq`, as the
hftbacktest recordings do) is checked with the venue's rule; one without them comes from
cryptofeed, which sequences (and checksums) the venue's stream itself and starts over from a
new snapshot on a gap, so its deltas apply in arrival order.
"""

from __future__ import annotations

from models.book import BookStatus, OrderBook
from models.events import BookDelta, BookSnapshot, DeadLetter, Event, encode
from models.sequencing import MissingUpdateIdError

BOOK_GAP = "book_gap"
BOOK_CROSSED = "book_crossed"
BOOK_IDS = "book_ids"
REASONS = (BOOK_GAP, BOOK_CROSSED, BOOK_IDS)


class InstrumentCheck:
    """One instrument's book, fed every event of its stream; `admit` says what goes on."""

    __slots__ = ("book", "flagged")

    def __init__(self, venue: str, symbol: str) -> None:
        self.book = OrderBook(venue, symbol)
        self.flagged = 0  # dead letters made here

    def admit(self, event: Event, out: list[Event]) -> None:
        """Append to `out` the event, when it is published, and its dead letter, if any."""
        kind = type(event)
        if kind is not BookDelta and kind is not BookSnapshot:
            out.append(event)
            return
        book_seq = self.book.seq
        try:
            status = self.book.apply(event)
        except MissingUpdateIdError as exc:
            out.append(self._dead_letter(event, f"{BOOK_IDS}: {exc}"))
            return
        out.append(event)
        if status is BookStatus.GAP:
            out.append(self._dead_letter(event, f"{BOOK_GAP}: updates missing at {_ids(event)} "
                                                f"(book at update id {book_seq}); waiting for "
                                                "a new snapshot"))
        elif status is BookStatus.CROSSED:
            out.append(self._dead_letter(event, f"{BOOK_CROSSED}: best bid >= best ask after "
                                                f"{_ids(event)}; waiting for a new snapshot"))

    def _dead_letter(self, event: BookDelta | BookSnapshot, reason: str) -> DeadLetter:
        self.flagged += 1
        return DeadLetter(source=f"ingest:{event.key}", reason=reason,
                          raw=encode(event).decode(), receive_ts=event.receive_ts)


def _ids(event: BookDelta | BookSnapshot) -> str:
    if type(event) is BookSnapshot:
        return f"snapshot {event.seq}"
    return f"delta {event.first_seq}..{event.seq} (prev {event.prev_seq})"
