"""The read-only view of a book that the paper venue and the strategies need.

`models.book.OrderBook` implements it for full L2 feeds; `TopOfBook` implements it for
feeds that only carry the best bid and ask (the simulated market, bookTicker-only venues).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol

from models.events import BBO, Level

BookSide = Literal["bid", "ask"]


class BookView(Protocol):
    def best_bid(self) -> Level | None: ...

    def best_ask(self) -> Level | None: ...

    def size_at(self, side: BookSide, price: Decimal) -> Decimal: ...

    def levels(self, side: BookSide, depth: int) -> list[Level]: ...


class TopOfBook:
    """A one-level book kept from BBO events."""

    __slots__ = ("_ask", "_bid")

    def __init__(self) -> None:
        self._bid: Level | None = None
        self._ask: Level | None = None

    def apply(self, bbo: BBO) -> None:
        self._bid = (bbo.bid_price, bbo.bid_size)
        self._ask = (bbo.ask_price, bbo.ask_size)

    def best_bid(self) -> Level | None:
        return self._bid

    def best_ask(self) -> Level | None:
        return self._ask

    def size_at(self, side: BookSide, price: Decimal) -> Decimal:
        level = self._bid if side == "bid" else self._ask
        return level[1] if level is not None and level[0] == price else Decimal(0)

    def levels(self, side: BookSide, depth: int) -> list[Level]:
        level = self._bid if side == "bid" else self._ask
        return [level] if level is not None and depth > 0 else []
