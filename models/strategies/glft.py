"""Guéant, Lehalle & Fernandez-Tapia (2013): the closed-form approximation of optimal quotes.

From Guéant, "Optimal market making" (2017), eq. for the CARA objective with ξ = γ and
order size Δ = one lot (so q is in lots), as in hftbacktest's GLFT tutorial:

    c1 = (1/(ξΔ)) ln(1 + ξΔ/k)
    c2 = sqrt( γ / (2 A Δ k) · (1 + ξΔ/k)^(k/(ξΔ) + 1) )
    δ_bid = c1 + (Δ/2) σ c2 + q σ c2        δ_ask = c1 + (Δ/2) σ c2 − q σ c2

The approximation is stationary (infinite horizon), so `time_left` is ignored.
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
    single_level_quotes,
)

LOT = 1.0  # Δ: every quote is one lot, so q and Δ share units


def glft_coefficients(gamma: float, A: float, k: float) -> tuple[float, float]:
    """(c1, c2) for ξ = γ and Δ = one lot."""
    x = gamma * LOT / k
    c1 = math.log1p(x) / (gamma * LOT)
    c2 = math.sqrt(gamma / (2.0 * A * LOT * k) * (1.0 + x) ** (k / (gamma * LOT) + 1.0))
    return c1, c2


@dataclass(frozen=True, slots=True)
class GLFT:
    name: ClassVar[str] = "glft"
    memoryless: ClassVar[bool] = True  # frozen parameters, no state: see Strategy

    order_size: float = lot_param()
    gamma: float = gamma_param()
    max_lots: float = max_lots_param()

    def __post_init__(self) -> None:
        check_bounds(self)

    def quote(self, state: MarketState) -> DesiredQuotes:
        c1, c2 = glft_coefficients(self.gamma, state.A, state.k)
        q = state.inventory / self.order_size
        half_spread = c1 + 0.5 * LOT * state.sigma * c2
        reservation = state.mid + state.skew - q * state.sigma * c2
        return single_level_quotes(
            reservation - half_spread,
            reservation + half_spread,
            self.order_size,
            q,
            self.max_lots,
            reservation,
        )
