"""The market that drives the paper venue: one fresh book per traded instrument.

Whoever has market events (a backtest, the simulator, the executor's md.* consumer) shows
them here, in receive order. Each event first lets the requests that reached the matching
engine before its exchange time arrive (against the book as it was), then updates the book
and matches; what our side has heard by the event's receive time goes to the adapter, for
the executor's next `pump`.
"""

from __future__ import annotations

from collections.abc import Iterable

from connectors.paper.adapter import PaperVenueAdapter
from connectors.paper.venue import PaperVenue
from models.book import OrderBook
from models.events import BBO, BookDelta, BookSnapshot, Event, MarketEvent, exchange_time
from models.fresh_book import FreshBook
from models.instrument import Instrument


class PaperMarket:
    __slots__ = ("_books", "_venue_id", "adapter", "venue")

    def __init__(
        self,
        venue: PaperVenue,
        adapter: PaperVenueAdapter,
        instruments: Iterable[Instrument],
        *,
        top_of_book: bool = False,
        books: dict[str, FreshBook] | None = None,
    ) -> None:
        """`books` by symbol: the market's own unless given (a caller that keeps them)."""
        self.venue = venue
        self.adapter = adapter
        self._venue_id = adapter.id
        self._books = books if books is not None else {
            i.symbol: FreshBook(None if top_of_book else OrderBook(i.venue, i.symbol))
            for i in instruments
        }

    def now_ns(self) -> int:
        return self.venue.now_ns

    def book(self, symbol: str) -> FreshBook | None:
        return self._books.get(symbol)

    def apply(self, event: Event) -> bool:
        """Advance the venue by one market event; False when it is not for our instruments."""
        if not isinstance(event, MarketEvent):
            return False
        book = self._books.get(event.symbol)
        if book is None or event.venue != self._venue_id:
            return False
        self.arrive_before(event)
        kind = type(event)
        changed = kind is BBO or kind is BookDelta or kind is BookSnapshot
        if changed:
            changed = book.apply(event)
        self.match(event, book, changed)
        return True

    def arrive_before(self, event: MarketEvent) -> None:
        """Requests that reached the engine before the event: they meet the book before it."""
        self.venue.advance_exchange(exchange_time(event))

    def match(self, event: MarketEvent, book: FreshBook, changed: bool) -> None:
        """The event against our orders, `book` already showing it; hand on what is heard.

        `apply` does `arrive_before`, the book and this; a caller that keeps the very same
        book beside (the backtest's quote session) applies the event to it in between."""
        self.adapter.push(self.venue.on_market_event(event, book, book_changed=changed))

    def advance_local(self, local_ts: int) -> None:
        """Local time passes without a market event (a requote timer)."""
        self.adapter.push(self.venue.advance_local(local_ts))

    def finish(self) -> None:
        """The market data has ended: requests in flight arrive and every response is heard."""
        self.adapter.push(self.venue.finish())
