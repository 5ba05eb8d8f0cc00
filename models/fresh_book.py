"""The freshest view of one instrument's book: the L2 book and the latest best bid/offer.

Binance (and most venues) batch depth diffs (spot every 100 ms) while the bookTicker stream
sends every change of the touch, so the L2 book's touch is often stale. Crossing checks,
post-only checks, matching and the engine's mid must use whichever is fresher: the BBO when
its update id (or, without ids, its exchange time) is later than the L2 book's last update,
else the L2 book. Under a fresher BBO the L2 levels at or better than the BBO's price are
known to be gone, so they are hidden; deeper levels are the L2 book's.

Without an L2 book (the simulated market, BBO-only venues) it is a top-of-book view.

>>> from decimal import Decimal as D
>>> from models.events import BBO, BookSnapshot
>>> book = FreshBook(OrderBook("binance", "BTC/USDT"))
>>> _ = book.apply(BookSnapshot(venue="binance", symbol="BTC/USDT", exchange_ts=1,
...     receive_ts=2, seq=10, bids=[(D(99), D(1)), (D(98), D(2))], asks=[(D(101), D(1))]))
>>> book.apply(BBO(venue="binance", symbol="BTC/USDT", exchange_ts=3, receive_ts=4, seq=11,
...     bid_price=D(98), bid_size=D("1.5"), ask_price=D(100), ask_size=D(3)))
True
>>> book.best_bid(), book.best_ask(), book.levels("bid", 5)
((Decimal('98'), Decimal('1.5')), (Decimal('100'), Decimal('3')), [(Decimal('98'), Decimal('1.5'))])
"""

from __future__ import annotations

from decimal import Decimal

from models.book import BookStatus, OrderBook
from models.book_view import BookSide
from models.events import BBO, BookDelta, BookSnapshot, Level

_ZERO = Decimal(0)


class FreshBook:
    __slots__ = (
        "_bbo_fresher", "_l2_ts", "ask", "bbo", "bid", "l2", "last_status", "touch_kept",
        "touch_moved",
    )

    def __init__(self, l2: OrderBook | None = None) -> None:
        self.l2 = l2
        self.bbo: BBO | None = None
        self._l2_ts = 0
        self._bbo_fresher = False
        self.bid: Level | None = None  # the touch, refreshed on every applied event
        self.ask: Level | None = None
        self.last_status: BookStatus | None = None
        self.touch_moved = False
        self.touch_kept = False  # after a depth event: the touch kept its prices and sizes

    @property
    def has_depth(self) -> bool:
        return self.l2 is not None

    def apply(self, event: BookSnapshot | BookDelta | BBO) -> bool:
        """Apply a book event; True when what the view shows may have changed.

        `touch_moved` then says whether a touch price moved: size-only ticker updates are
        far the most frequent events and change no model input but the queue estimates.
        After a depth event `touch_kept` says whether both touches kept price and size.
        """
        bid, ask = self.bid, self.ask
        if type(event) is BBO:
            # A ticker update, the most frequent event: `_refresh` and the comparisons
            # unrolled, the L2 book asked only when the ticker is not the fresher.
            self.bbo = event
            l2 = self.l2
            if l2 is not None and not _fresher(event, l2.seq, self._l2_ts) and (
                l2.synced and l2.best_bid() is not None
            ):
                self._bbo_fresher = False
                new_bid, new_ask = self.bid, self.ask = l2.best_bid(), l2.best_ask()
                self.touch_moved = moved = (
                    bid is None or ask is None or new_bid is None or new_ask is None
                    or bid[0] != new_bid[0] or ask[0] != new_ask[0]
                )
                return moved or bid != new_bid or ask != new_ask
            self._bbo_fresher = True
            bid_price, ask_price = event.bid_price, event.ask_price
            new_bid = self.bid = (bid_price, event.bid_size)
            new_ask = self.ask = (ask_price, event.ask_size)
            if bid is None or ask is None or bid[0] != bid_price or ask[0] != ask_price:
                self.touch_moved = True
                return True
            self.touch_moved = False
            return bid[1] != new_bid[1] or ask[1] != new_ask[1]
        if self.l2 is None:
            self.touch_moved = False
            return False
        self.last_status = self.l2.apply(event)
        self._l2_ts = event.exchange_ts
        self._refresh()
        new_bid, new_ask = self.bid, self.ask
        self.touch_moved = moved = (
            bid is None or ask is None or new_bid is None or new_ask is None
            or bid[0] != new_bid[0] or ask[0] != new_ask[0]
        )
        # Mostly the very pairs of before (the book hands back the level's own tuple).
        self.touch_kept = not moved and bid[1] == new_bid[1] and ask[1] == new_ask[1]
        return True

    def _refresh(self) -> None:
        bbo, l2 = self.bbo, self.l2
        l2_live = l2 is not None and l2.synced and l2.best_bid() is not None
        if bbo is None or (l2_live and not _fresher(bbo, l2.seq, self._l2_ts)):
            self._bbo_fresher = False
            if l2 is None:
                self.bid = self.ask = None
            else:
                self.bid, self.ask = l2.best_bid(), l2.best_ask()
            return
        self._bbo_fresher = True
        self.bid = (bbo.bid_price, bbo.bid_size)
        self.ask = (bbo.ask_price, bbo.ask_size)

    # -- BookView ---------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        return self.bid

    def best_ask(self) -> Level | None:
        return self.ask

    def size_at(self, side: BookSide, price: Decimal) -> Decimal:
        if self._bbo_fresher:
            touch = self.bid if side == "bid" else self.ask
            if price == touch[0]:
                return touch[1]
            if (price > touch[0]) if side == "bid" else (price < touch[0]):
                return _ZERO
        l2 = self.l2
        return _ZERO if l2 is None else l2.size_at(side, price)

    def levels(self, side: BookSide, depth: int) -> list[Level]:
        if depth <= 0:
            return []
        l2 = self.l2
        if not self._bbo_fresher:
            return [] if l2 is None else l2.levels(side, depth)
        touch = self.bid if side == "bid" else self.ask
        levels = [touch]
        if l2 is not None and l2.synced:
            price = touch[0]
            deeper = l2.levels(side, depth + 1)
            if side == "bid":
                levels.extend(level for level in deeper if level[0] < price)
            else:
                levels.extend(level for level in deeper if level[0] > price)
        return levels[:depth]

    def mid(self) -> Decimal | None:
        bid, ask = self.bid, self.ask
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2


def _fresher(bbo: BBO, l2_seq: int | None, l2_exchange_ts: int) -> bool:
    """The BBO is newer than the L2 book's last update: by update id where both have one."""
    if bbo.seq is not None and l2_seq is not None:
        return bbo.seq > l2_seq
    return bbo.exchange_ts > l2_exchange_ts
