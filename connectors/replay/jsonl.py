"""Body of `quoteflow replay`: recordings -> normalized events as JSON lines.

Every event is written as its msgspec JSON (type-tagged, Decimals as strings), in receive-time
order across the input files. Book events (snapshots and deltas) go through one `OrderBook`
per instrument, sequenced by the rule its venue's descriptor names (`connectors.venues`), and
additionally carry what the book made of them:
`book_status` (applied / buffered / stale / gap / crossed) and `best_bid` / `best_ask`, the
top-of-book prices after applying them (null while the book is unsynced). `seq` is every
market event's own field. Dead letters are written to the same output as `dead_letter` lines,
so one file keeps the whole replay in order and a reader can filter them by `type`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import msgspec

from connectors.replay.recordings import Recordings
from connectors.venues import sequencing_rule
from models.book import BookStats, BookStatus, OrderBook
from models.events import BookDelta, BookSnapshot, DeadLetter, encode


class _BookOutcome(msgspec.Struct):
    book_status: BookStatus
    best_bid: Decimal | None
    best_ask: Decimal | None


_encode_outcome = msgspec.json.Encoder(decimal_format="string").encode


class JsonlReplayReport:
    __slots__ = ("books", "first_dead_letter", "lines_written", "market_events", "replay")

    def __init__(
        self, replay: dict, books: dict[str, BookStats], lines_written: int,
        market_events: int = 0, first_dead_letter: DeadLetter | None = None,
    ):
        self.replay = replay
        self.books = books
        self.lines_written = lines_written
        self.market_events = market_events  # the rest of the lines are dead letters
        self.first_dead_letter = first_dead_letter

    def as_dict(self) -> dict:
        return {
            "lines_written": self.lines_written,
            **self.replay,
            "books": {key: stats.as_dict() for key, stats in self.books.items()},
        }


def replay_to_jsonl(paths: Iterable[str | Path], out_path: str | Path) -> JsonlReplayReport:
    recordings = Recordings(list(paths))
    books: dict[tuple[str, str], OrderBook] = {}
    written = market = 0
    first_dead: DeadLetter | None = None
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("wb") as out:
        for event in recordings.events():
            line = encode(event)
            if type(event) is BookDelta or type(event) is BookSnapshot:
                instrument = (event.venue, event.symbol)
                book = books.get(instrument)
                if book is None:
                    book = books[instrument] = OrderBook(
                        event.venue, event.symbol, sequencing_rule(event.venue)
                    )
                line = _with_outcome(line, book.apply(event), book)
            if type(event) is DeadLetter:
                first_dead = first_dead or event
            else:
                market += 1
            out.write(line)
            out.write(b"\n")
            written += 1
    book_stats = {f"{venue}:{symbol}": book.stats for (venue, symbol), book in books.items()}
    return JsonlReplayReport(recordings.stats(), book_stats, written, market, first_dead)


def _with_outcome(event_json: bytes, status: BookStatus, book: OrderBook) -> bytes:
    # Both are JSON objects: joining them textually avoids rebuilding the event as a dict.
    bid, ask = book.best_bid(), book.best_ask()
    outcome = _encode_outcome(
        _BookOutcome(status, bid[0] if bid else None, ask[0] if ask else None)
    )
    return event_json[:-1] + b"," + outcome[1:]
