"""Fixed offset from the touch: one bid `offset_ticks` below the best bid, one ask as far above
the best ask, `order_size` each, whatever the inventory (up to `max_lots`).

The simplest market maker there is, and the one a peer backtester can run unchanged: the
fidelity benchmark (bench/fidelity_hftbacktest.py) quotes it in quoteflow and in hftbacktest
on the same recording. No model input (σ, A, k) is used.

The quote flow rounds bids down and asks up onto the venue's grid, so each price is put half
a tick inside its target: float error can then never push it a whole tick further out.

>>> from models.strategies.base import MarketState
>>> strategy = FixedOffset(order_size=0.5, offset_ticks=2, tick_size=0.1)
>>> state = MarketState(mid=100.05, best_bid=100.0, best_ask=100.1, inventory=0.0,
...                     sigma=0.0, A=0.0, k=0.0, time_left=None)
>>> quotes = strategy.quote(state)
>>> [round(q.price, 2) for q in quotes.bids], [round(q.price, 2) for q in quotes.asks]
([99.85], [100.25])
>>> # on the 0.1 grid: bid 99.85 down to 99.8 = best bid − 2 ticks, ask 100.25 up to 100.3
>>> capped = FixedOffset(order_size=0.5, offset_ticks=2, tick_size=0.1, max_lots=2)
>>> capped.quote(MarketState(100.05, 100.0, 100.1, 1.0, 0.0, 0.0, 0.0, None)).bids
()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.strategies.base import (
    DesiredQuotes,
    MarketState,
    check_bounds,
    lot_param,
    max_lots_param,
    param,
    single_level_quotes,
)


@dataclass(frozen=True, slots=True)
class FixedOffset:
    name: ClassVar[str] = "fixed-offset"
    memoryless: ClassVar[bool] = True  # frozen parameters, no state: see Strategy

    order_size: float = lot_param()
    offset_ticks: int = param(0, "ticks behind the touch: 0 joins the best bid and ask",
                              ge=0, le=1_000_000)
    tick_size: float = param(0.01, "the venue's price tick (BTCUSDT: spot 0.01, USD-M 0.1)",
                             gt=0, le=1e6)
    max_lots: float = max_lots_param()

    def __post_init__(self) -> None:
        check_bounds(self)

    def quote(self, state: MarketState) -> DesiredQuotes:
        # `skew` moves both quotes, as it moves every model's reservation price; without a
        # touch (never in the quote flow, which quotes only a two-sided book) the mid stands in.
        skew = state.skew
        bid = state.mid if state.best_bid is None else state.best_bid
        ask = state.mid if state.best_ask is None else state.best_ask
        distance = (self.offset_ticks - 0.5) * self.tick_size
        return single_level_quotes(
            bid - distance + skew,
            ask + distance + skew,
            self.order_size,
            state.inventory / self.order_size,
            self.max_lots,
            state.mid + skew,
        )
