"""Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book".

Finite horizon (section 3, with the paper's frozen-inventory approximation), q in lots:

    r      = s − q γ σ² (T−t)
    spread = γ σ² (T−t) + (2/γ) ln(1 + γ/k)        quotes at r ± spread/2

When the state carries no time left (a market with no session end), `horizon` is used as a
constant T−t: the rolling form Hummingbot runs in its "infinite" timeframe mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from models.strategies.base import (
    DesiredQuotes,
    MarketState,
    check_bounds,
    gamma_param,
    lot_param,
    max_lots_param,
    param,
    single_level_quotes,
)


@dataclass(frozen=True, slots=True)
class AvellanedaStoikov:
    name: ClassVar[str] = "avellaneda-stoikov"
    memoryless: ClassVar[bool] = True  # frozen parameters, no state: see Strategy

    order_size: float = lot_param()
    gamma: float = gamma_param()
    horizon: float = param(1.0, "T-t in seconds used when the state has no time left", ge=0,
                           le=1e7)
    max_lots: float = max_lots_param()

    def __post_init__(self) -> None:
        check_bounds(self)

    def quote(self, state: MarketState) -> DesiredQuotes:
        gamma = self.gamma
        tau = self.horizon if state.time_left is None else max(state.time_left, 0.0)
        q = state.inventory / self.order_size
        risk = gamma * state.sigma * state.sigma * tau
        reservation = state.mid - q * risk + state.skew
        half = 0.5 * (risk + (2.0 / gamma) * math.log1p(gamma / state.k))
        return single_level_quotes(
            reservation - half, reservation + half, self.order_size, q, self.max_lots, reservation
        )
