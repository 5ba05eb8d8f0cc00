"""Where one simulated resting order stands in its price level's FIFO queue.

The paper venue cannot see the real queue, only the visible size at each price, so it keeps
an estimate of the volume ahead of us (`ahead`) and updates it from public trades and from
changes of the visible size. The rules (docs/paper-venue.md explains the choices):

- a new order joins the back: `ahead` starts at the visible size at its price;
- trades at our price consume `ahead` first, and only the rest reaches us;
- a trade printing through our price (a sell below our bid) means the whole level traded,
  so the full trade size reaches us;
- a decrease of the visible size that trades do not explain is a cancel, taken pro rata
  from ahead of and behind us; an increase is new orders, which queue behind us.

`ahead` stays on the size grid (rounded up, so the estimate never grants us priority we
cannot prove) so that the volume it lets through is always a valid fill size.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from models.events import Side

ZERO = Decimal(0)


class QueuePosition:
    __slots__ = ("_is_bid", "_level_size", "_step", "_traded", "ahead", "price")

    def __init__(self, side: Side, price: Decimal, visible_size: Decimal, step: Decimal) -> None:
        self._is_bid = side == "buy"
        self.price = price
        self._step = step
        self.ahead = visible_size
        self._level_size = visible_size
        # Volume traded at our price since the visible size was last seen: the book will show
        # it as a decrease, which must not be counted a second time as cancels.
        self._traded = ZERO

    def on_trade(self, price: Decimal, size: Decimal) -> Decimal:
        """A public trade that hit our side of the book; returns the volume that reaches us.

        The caller passes only trades whose taker is on the other side (sells for a bid).
        """
        if price == self.price:
            self._traded += size
            if size <= self.ahead:
                self.ahead -= size
                return ZERO
            size -= self.ahead
            self.ahead = ZERO
            return size
        traded_through = price < self.price if self._is_bid else price > self.price
        if traded_through:
            self.ahead = ZERO
            return size
        return ZERO

    def on_level_size(self, size: Decimal) -> None:
        """The visible size at our price is now `size` (the caller knows it is observable).

        An unchanged size says nothing: trades at our price may not be in the book yet, and
        forgetting them here would count them a second time, as cancels, when they show up.
        """
        if size == self._level_size:
            return
        before = self._level_size - self._traded
        cancelled = before - size
        if cancelled > 0 and self.ahead > 0:
            # Every resting order is equally likely to be the one cancelled, so the expected
            # share taken from ahead of us is ahead / (volume at the level before).
            share = self.ahead * cancelled / before
            self.ahead = _ceil_to_step(self.ahead - share, self._step)
        if self.ahead > size:
            self.ahead = size
        self._level_size = size
        self._traded = ZERO

    def is_behind(self, best_same_side: Decimal) -> bool:
        """Our price is behind the touch, where a top-of-book feed cannot see the level."""
        return self.price < best_same_side if self._is_bid else self.price > best_same_side

    def is_crossed_by(self, best_opposite: Decimal) -> bool:
        """The opposite side's best price reached ours: the book moved through us."""
        return best_opposite <= self.price if self._is_bid else best_opposite >= self.price


def _ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step
