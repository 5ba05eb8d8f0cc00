"""Avellaneda & Stoikov (2008), section 2.3: the infinite-horizon investor discounting at ω.

With v(x, s, q) = E ∫ e^{−ωt} −exp(−γ(x + q S_t)) dt, the indifference prices solve
v(x − r_b, s, q+1) = v(x, s, q) and v(x + r_a, s, q−1) = v(x, s, q), which gives (D = 2ω − γ²σ²q²)

    r_b = s + (1/γ) ln(1 − (2q+1) γ²σ² / D)
    r_a = s − (1/γ) ln(1 + (2q−1) γ²σ² / D)

(the ask as derived from that definition; the printed paper has the ask's ln argument's sign
flipped, which only agrees to first order). Quotes sit (1/γ) ln(1 + γ/k) outside them, as in
the finite-horizon model. The reported reservation price is the marginal indifference price
r = s − 2γσ²q / D, which is smooth and decreasing in q; for large ω it tends to
s − q γ σ² / ω, the finite-horizon r with T−t = 1/ω.

Why this form rather than a rolling finite horizon: it is stationary (no arbitrary T), and it
carries its own inventory limit. The value function is finite only while γ²σ²q² < 2ω, so
with Q = √(2ω)/(γσ) the model buys only while q < Q−1 and sells only while q > 1−Q: the
bound tightens when volatility rises. The paper's suggestion ω = ½γ²σ²(q_max+1)² makes
Q = q_max+1 at the volatility it was set for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from models.strategies.base import (
    DesiredQuotes,
    MarketState,
    QuoteLevel,
    check_bounds,
    gamma_param,
    lot_param,
    max_lots_param,
    param,
)


@dataclass(frozen=True, slots=True)
class AvellanedaStoikovInfinite:
    name: ClassVar[str] = "avellaneda-stoikov-infinite"
    memoryless: ClassVar[bool] = True  # frozen parameters, no state: see Strategy

    order_size: float = lot_param()
    gamma: float = gamma_param()
    omega: float = param(2.5, "discount rate 1/s; |q| is bounded by sqrt(2 omega)/(gamma sigma)-1",
                         gt=0, le=1e6)
    max_lots: float = max_lots_param()

    def __post_init__(self) -> None:
        check_bounds(self)

    def quote(self, state: MarketState) -> DesiredQuotes:
        gamma = self.gamma
        s = state.mid + state.skew
        q = state.inventory / self.order_size
        g = gamma * gamma * state.sigma * state.sigma
        two_omega = 2.0 * self.omega
        bound = math.sqrt(two_omega / g) - 1.0 if g > 0.0 else math.inf
        limit = min(bound, self.max_lots)
        if limit <= 0.0:
            return DesiredQuotes((), (), s)
        # Past the bound the formulas have no finite value; the reducing side is priced at
        # the bound, the most eager price the model defines. Inside it, D and both ln
        # arguments are positive.
        q_model = min(max(q, -bound), bound)
        d = two_omega - g * q_model * q_model
        edge = math.log1p(gamma / state.k) / gamma
        bids: tuple[QuoteLevel, ...] = ()
        asks: tuple[QuoteLevel, ...] = ()
        if q < limit:
            r_bid = s + math.log(1.0 - (2.0 * q_model + 1.0) * g / d) / gamma
            bids = (QuoteLevel(r_bid - edge, self.order_size),)
        if q > -limit:
            r_ask = s - math.log(1.0 + (2.0 * q_model - 1.0) * g / d) / gamma
            asks = (QuoteLevel(r_ask + edge, self.order_size),)
        return DesiredQuotes(bids, asks, s - 2.0 * gamma * state.sigma**2 * q_model / d)
