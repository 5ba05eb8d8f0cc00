"""One instrument trading against the paper venue, in market-event time.

This is the loop the embedded default and the backtest run inside the quote flow's keyed
state: each market event updates the book, lets the paper venue match our resting orders,
feeds fills back into inventory, PnL and markouts, and asks the quote engine for a new
desired state, which is diffed against our live orders and sent to the venue. On Kafka the
same engine runs in the quote flow and the venue sits behind the executor; here they share
one clock so a backtest is deterministic.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import ccxt

from connectors.paper_venue import PaperVenue
from models.accounting import PositionLedger
from models.book_view import TopOfBook
from models.events import (
    BBO,
    AnyMarketEvent,
    BookDelta,
    BookSnapshot,
    Event,
    Fill,
    OrderEvent,
    OrderIntent,
    Trade,
)
from models.live_orders import LiveOrders
from models.markouts import MarkoutTracker
from models.order_diff import diff_orders
from models.quote_engine import QuoteEngine


class PaperTradingSession:
    """State of one instrument; picklable so Bytewax can snapshot it."""

    def __init__(
        self,
        engine: QuoteEngine,
        venue: PaperVenue,
        book,
        *,
        ledger: PositionLedger,
        markouts: MarkoutTracker,
        sample_interval_ns: int,
    ):
        self.engine = engine
        self.venue = venue
        self.book = book
        self.ledger = ledger
        self.markouts = markouts
        self.live = LiveOrders(prefix=f"qf{engine.instrument.symbol.split('/')[0].lower()}")
        self.counts: Counter[str] = Counter()
        self.max_abs_inventory = Decimal(0)
        self._top_of_book = isinstance(book, TopOfBook)
        self._sample_interval_ns = sample_interval_ns
        self._next_sample_ns = 0
        self.last_mid: Decimal | None = None
        self._mid: Decimal | None = None  # of the book as it is now: it changes with the book
        self._last_ts = 0

    @property
    def symbol(self) -> str:
        return self.engine.instrument.symbol

    def on_event(self, event: AnyMarketEvent) -> list[Event]:
        out: list[Event] = []
        book_changed = self._apply_to_book(event)
        for result in self.venue.on_market_event(event, self.book, book_changed=book_changed):
            self._on_venue_result(result, out)
        if book_changed:
            self._mid = self._current_mid()
        mid = self._mid
        ts = event.receive_ts
        self._last_ts = ts
        if mid is not None:
            self.last_mid = mid
            self.markouts.on_mid(ts, mid)
        if isinstance(event, Trade):
            self.engine.on_trade(event, None if mid is None else float(mid))
        if book_changed or out:
            intent = self.engine.on_book(ts, self.book, event.receive_ts)
            if intent is not None:
                out.append(intent)
                self._execute(intent, out)
        if ts >= self._next_sample_ns and mid is not None:
            self._next_sample_ns = ts + self._sample_interval_ns
            out.append(self.ledger.position(ts, mid))
        return out

    def close(self) -> list[Event]:
        """Pull every quote and report the final position (end of a backtest or run)."""
        out: list[Event] = []
        for client_order_id in self.live.ids():
            self._cancel(client_order_id, out)
        if self.last_mid is not None:
            out.append(self.ledger.position(self._last_ts, self.last_mid))
        return out

    def _apply_to_book(self, event: AnyMarketEvent) -> bool:
        if isinstance(event, (BookSnapshot, BookDelta)):
            if self._top_of_book:
                return False
            status = self.book.apply(event)
            self.counts[f"book_{status}"] += 1
            return True
        if isinstance(event, BBO) and self._top_of_book:
            self.book.apply(event)
            return True
        return False

    def _current_mid(self) -> Decimal | None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2

    def _on_venue_result(self, result: OrderEvent | Fill, out: list[Event]) -> None:
        out.append(result)
        if isinstance(result, Fill):
            self.counts["fills"] += 1
            self.engine.on_fill(result)
            self.ledger.apply(result)
            self.max_abs_inventory = max(self.max_abs_inventory, abs(self.ledger.quantity))
            if self.last_mid is not None:
                self.markouts.on_fill(result, self.last_mid)
        else:
            self.counts[f"order_{result.kind}"] += 1
            self.live.on_event(result)

    def _execute(self, intent: OrderIntent, out: list[Event]) -> None:
        actions = diff_orders(intent.bids, intent.asks, self.live)
        for client_order_id in actions.cancels:
            self._cancel(client_order_id, out)
        for side, quote in actions.places:
            client_order_id = self.live.new_client_order_id()
            try:
                self.venue.place_order(
                    self.symbol,
                    "limit",
                    side,
                    quote.size,
                    quote.price,
                    {"clientOrderId": client_order_id, "postOnly": True},
                )
            except ccxt.BaseError as error:
                self.counts["order_reject"] += 1
                out.append(self._reject(client_order_id, side, quote.price, quote.size, str(error)))
                continue
            self.live.placed(client_order_id, side, quote.price, quote.size)

    def _cancel(self, client_order_id: str, out: list[Event]) -> None:
        self.live.cancelling(client_order_id)
        try:
            self.venue.request_cancel(
                client_order_id, self.symbol, {"clientOrderId": client_order_id}
            )
        except ccxt.OrderNotFound:
            # Filled (or rejected) before the cancel reached it: the venue's events say which.
            self.counts["cancel_too_late"] += 1

    def _reject(self, client_order_id: str, side, price, size, reason: str) -> OrderEvent:
        instrument = self.engine.instrument
        return OrderEvent(
            venue=instrument.venue,
            symbol=instrument.symbol,
            ts=self._last_ts,
            kind="reject",
            client_order_id=client_order_id,
            side=side,
            price=price,
            size=size,
            remaining=size,
            reason=reason,
        )
