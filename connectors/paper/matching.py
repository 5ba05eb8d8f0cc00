"""What a taker order gets from the visible book.

The book is the real market's: our taker fills do not remove liquidity from it (no market
impact), which is honest for small orders and optimistic for large ones.
"""

from __future__ import annotations

from decimal import Decimal

from models.book_view import BookView
from models.events import Level, Side

# Most taker orders finish inside the first few levels; deeper books are read in growing
# slices rather than copied whole.
FIRST_DEPTH = 8
DEPTH_GROWTH = 4


def walk(book: BookView, side: Side, amount: Decimal, limit: Decimal | None) -> list[Level]:
    """(price, size) executions of a taker `side` order, best price first, up to `limit`."""
    book_side = "ask" if side == "buy" else "bid"
    depth = FIRST_DEPTH
    while True:
        levels = book.levels(book_side, depth)
        executions: list[Level] = []
        left = amount
        for price, size in levels:
            if limit is not None and (price > limit if side == "buy" else price < limit):
                return executions
            if not size:  # a top-of-book view can show an empty touch
                continue
            take = size if size < left else left
            executions.append((price, take))
            left -= take
            if not left:
                return executions
        if len(levels) < depth:
            return executions
        depth *= DEPTH_GROWTH


def crosses(side: Side, price: Decimal, book: BookView) -> bool:
    """A limit order at `price` would trade on arrival against the opposite best."""
    if side == "buy":
        best = book.best_ask()
        return best is not None and price >= best[0]
    best = book.best_bid()
    return best is not None and price <= best[0]
