"""The L2 book alone: CPU µs per recorded event and ns per level update.

The recording's snapshots and depth diffs, decoded beforehand, go through `models.book.OrderBook`
as the backtest drives it: `apply`, then the reads the fresher-touch view and the paper venue
make after each event (`synced`, `seq`, both touches, five levels a side). The per-event figure
divides by every recorded event (bookTicker and trades included), as the backtest's
breakdown in docs/benchmarks.md does. The script only names `models.book`, so the same file
times any version of the book (run it from an older checkout to compare).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from bench.common import parse_args, write_json
from connectors.replay.recordings import Recordings
from models.book import OrderBook
from models.events import BookDelta, BookSnapshot

RESULT_FILE = "book_throughput.json"


def time_book(events: list, reads: bool) -> float:
    book = OrderBook(events[0].venue, events[0].symbol)
    started = time.process_time()
    for event in events:
        book.apply(event)
        if reads:
            _ = book.synced, book.seq, book.best_bid(), book.best_ask()
            book.levels("bid", 5)
            book.levels("ask", 5)
    return time.process_time() - started


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    recorded = list(Recordings([args.data]).events())
    events = [event for event in recorded if type(event) in (BookDelta, BookSnapshot)]
    levels = sum(len(event.bids) + len(event.asks) for event in events)
    results = {"implementation": OrderBook.__module__, "recorded_events": len(recorded),
               "book_events": len(events), "level_updates": levels}
    for name, reads in (("apply", False), ("apply_and_reads", True)):
        seconds = min(time_book(events, reads) for _ in range(args.repeat))
        results[name] = {
            "cpu_seconds": seconds,
            "us_per_recorded_event": seconds / len(recorded) * 1e6,
            "us_per_book_event": seconds / len(events) * 1e6,
            "ns_per_level": seconds / levels * 1e9,
        }
        got = results[name]
        print(f"{name:16} {seconds:.3f} s CPU  {got['us_per_recorded_event']:.2f} µs/event"
              f"  {got['us_per_book_event']:.1f} µs/diff  {got['ns_per_level']:.0f} ns/level"
              f"  ({OrderBook.__module__})")
    write_json(args.out / RESULT_FILE, results)


if __name__ == "__main__":
    main(sys.argv[1:])
