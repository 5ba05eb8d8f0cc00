"""Fixed-spread ladder: symmetric levels around a reservation price skewed by inventory.

Distances are in basis points of the mid, so one parameter set fits instruments of any
price; the quote flow rounds the result onto the tick grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from models.strategies.base import (
    DesiredQuotes,
    MarketState,
    QuoteLevel,
    check_bounds,
    max_lots_param,
    param,
)

BPS = 1e-4
# Resting orders per side; venues cap open orders per symbol in the hundreds, and the
# executor places each level as one order.
MAX_LEVELS = 50


@dataclass(frozen=True, slots=True)
class Ladder:
    name: ClassVar[str] = "ladder"
    memoryless: ClassVar[bool] = True  # frozen parameters, no state: see Strategy

    order_size: float = param(1.0, "size of the innermost level in base units: one lot",
                              gt=0, le=1e9)
    levels: int = param(1, "orders per side", gt=0, le=MAX_LEVELS)
    spread_bps: float = param(10.0, "innermost ask minus innermost bid, bps of mid",
                              gt=0, le=10_000)
    level_spacing_bps: float = param(5.0, "distance between consecutive levels, bps of mid",
                                     gt=0, le=10_000)
    size_growth: float = param(1.0, "each level's size is the previous one's times this",
                               gt=0, le=10)
    skew_bps_per_lot: float = param(0.0, "reservation shift against the position, bps per lot",
                                    ge=0, le=10_000)
    max_lots: float = max_lots_param()
    # (distance from the reservation price as a fraction of mid, size) per level, fixed at
    # construction so quoting is one multiply-add per level.
    _levels: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_bounds(self)  # before the levels are built: `levels` sizes a tuple
        levels = tuple(
            (
                (self.spread_bps / 2 + i * self.level_spacing_bps) * BPS,
                self.order_size * self.size_growth**i,
            )
            for i in range(self.levels)
        )
        object.__setattr__(self, "_levels", levels)

    def quote(self, state: MarketState) -> DesiredQuotes:
        mid = state.mid
        q = state.inventory / self.order_size
        reservation = mid * (1.0 - self.skew_bps_per_lot * BPS * q) + state.skew
        bids: tuple[QuoteLevel, ...] = ()
        asks: tuple[QuoteLevel, ...] = ()
        if q < self.max_lots:
            bids = tuple([QuoteLevel(reservation - mid * d, size) for d, size in self._levels])
        if q > -self.max_lots:
            asks = tuple([QuoteLevel(reservation + mid * d, size) for d, size in self._levels])
        return DesiredQuotes(bids, asks, reservation)
