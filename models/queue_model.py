"""Where one simulated resting order stands in its price level's FIFO queue.

The paper venue cannot see the real queue, only the visible size at each price, so it keeps
an estimate of the volume ahead of us (`ahead`), moved by public trades and by changes of
the visible size. Trades are handled alike by every model:

- a new order joins the back: `ahead` starts at the visible size at its price;
- prints at our price consume `ahead` first, and only the rest reaches us;
- a print through our price (a sell below our bid) means the whole level traded: `ahead` is
  gone and the whole print reaches us.

The models differ in what a decrease of the visible size that trades do not explain (a
cancel) does to `ahead`; they are hftbacktest's (docs/paper-venue.md):

- `RiskAverseQueue` (the default): cancels are always behind us; `ahead` only shrinks to
  the visible size (`ahead = min(ahead, size)`).
- `PowerProbQueue(n)`: a cancel is ahead of us with probability f(front)/(f(front)+f(back)),
  f(x) = x**n (hftbacktest's `ProbQueueModel` with `PowerProbQueueFunc`).

`ahead` stays on the size grid (rounded up, never granting priority we cannot prove) so the
volume it lets through is always a valid fill size.

>>> from decimal import Decimal as D
>>> q = RiskAverseQueue("buy", D("100"), D("5"), D("0.1"))
>>> q.on_trade(D("100"), D("3")), q.ahead       # a print at our price eats the queue first
(Decimal('0'), Decimal('2'))
>>> q.on_level_size(D("1")); q.ahead           # a cancel: only down to what is visible
Decimal('1')
>>> q.on_trade(D("99.9"), D("0.5"))            # a print through our price reaches us whole
Decimal('0.5')
>>> type(parse_queue_model("power:2")("buy", D("100"), D("4"), D("1"))).__name__
'PowerProbQueue'
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from functools import partial

from models.events import Side

ZERO = Decimal(0)
QUEUE_MODELS = ("risk-averse", "power:N")


class QueuePosition:
    """Shared trade and crossing logic; subclasses decide what a cancel does."""

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
        """A public print that hit our side of the book; returns the volume that reaches us.

        The caller passes only prints whose taker is on the other side (sells for a bid).
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

        An unchanged size says nothing: prints at our price may not be in the book yet, and
        forgetting them here would count them a second time, as cancels, when they show up.
        """
        if size == self._level_size:
            return
        cancelled = self._level_size - self._traded - size
        if cancelled > 0 and self.ahead > 0:
            self._on_cancel(cancelled)
        if self.ahead > size:
            self.ahead = size
        self._level_size = size
        self._traded = ZERO

    def _on_cancel(self, cancelled: Decimal) -> None:
        """`cancelled` left the level (beyond what traded): move `ahead` as the model says."""

    def is_behind(self, best_same_side: Decimal) -> bool:
        """Our price is behind the touch, where a top-of-book feed cannot see the level."""
        return self.price < best_same_side if self._is_bid else self.price > best_same_side

    def is_crossed_by(self, best_opposite: Decimal) -> bool:
        """The opposite side's best price reached ours: the book moved through us."""
        return best_opposite <= self.price if self._is_bid else best_opposite >= self.price


class RiskAverseQueue(QueuePosition):
    """Cancels never move us up: `ahead` only shrinks to the visible size."""

    __slots__ = ()


class PowerProbQueue(QueuePosition):
    """A cancel is ahead of us with probability f(front) / (f(front) + f(back)), f = x**n."""

    __slots__ = ("_n",)

    def __init__(
        self, side: Side, price: Decimal, visible_size: Decimal, step: Decimal, n: float = 2.0
    ) -> None:
        super().__init__(side, price, visible_size, step)
        self._n = n

    def _on_cancel(self, cancelled: Decimal) -> None:
        front = float(self.ahead)
        back = max(float(self._level_size - self._traded) - front, 0.0)
        change = float(cancelled)
        f_front, f_back = front**self._n, back**self._n
        prob_behind = 1.0 if f_front + f_back == 0 else f_back / (f_front + f_back)
        estimate = front - (1.0 - prob_behind) * change + min(back - prob_behind * change, 0.0)
        self.ahead = _ceil_to_step(Decimal(repr(max(estimate, 0.0))), self._step)


QueueFactory = Callable[[Side, Decimal, Decimal, Decimal], QueuePosition]


def parse_queue_model(spec: str) -> QueueFactory:
    """`risk-averse` or `power:N` (N > 0; `power` alone is N = 2) into a queue factory."""
    name, _, argument = spec.strip().partition(":")
    if name == "risk-averse" and not argument:
        return RiskAverseQueue
    if name == "power":
        try:
            n = float(argument) if argument else 2.0
        except ValueError:
            n = -1.0
        if not (n > 0 and n != float("inf")):
            raise ValueError(f"queue model {spec!r}: power:N needs a positive number N")
        return partial(PowerProbQueue, n=n)  # a partial pickles, for Bytewax snapshots
    raise ValueError(f"unknown queue model {spec!r}: choose from {', '.join(QUEUE_MODELS)}")


def _ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_CEILING) * step
