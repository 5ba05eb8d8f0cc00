"""The simulation of Avellaneda & Stoikov (2008), section 4, vectorised over paths.

Each of `paths` runs T/dt steps. At each step the agent quotes; the ask is lifted with
probability A·e^{−k δa}·dt and the bid hit with probability A·e^{−k δb}·dt (one unit
each); then the mid moves ±σ√dt with equal probability, as in the paper.

- "inventory": the finite-horizon A–S quotes around r = s − q γ σ² (T−t).
- "symmetric": quotes centred on the mid with a constant spread equal to the inventory
  strategy's average spread over [0, T], as the paper's benchmark.

Both strategies see the same mid paths and the same uniform draws for their fills
(common random numbers), so their difference reflects the quoting rule, not the luck of
the draw. The Generator is seeded, so a seed gives the same table.
"""

from __future__ import annotations

import math

import numpy as np

from models import as_paper

STATISTICS = ("profit_mean", "profit_std", "final_q_mean", "final_q_std", "spread_mean")


def as_spread(gamma: float, sigma: float, k: float, time_left: np.ndarray) -> np.ndarray:
    """Total spread δa + δb = γσ²(T−t) + (2/γ) ln(1 + γ/k)."""
    return gamma * sigma**2 * time_left + (2.0 / gamma) * math.log1p(gamma / k)


def run_experiment(
    gamma: float,
    paths: int,
    seed: int,
    s0: float = as_paper.S0,
    T: float = as_paper.T,
    sigma: float = as_paper.SIGMA,
    dt: float = as_paper.DT,
    k: float = as_paper.K,
    A: float = as_paper.A,
    q0: int = 0,
) -> dict[str, dict[str, float]]:
    """{"inventory": {...}, "symmetric": {...}} with the statistics in STATISTICS."""
    if gamma <= 0 or paths < 2 or k <= 0 or A < 0 or sigma < 0 or dt <= 0 or dt > T:
        raise ValueError("need gamma > 0, paths >= 2, k > 0, A >= 0, sigma >= 0, 0 < dt <= T")
    rng = np.random.default_rng(seed)
    steps = round(T / dt)
    time_left = T - dt * np.arange(steps)
    spreads = as_spread(gamma, sigma, k, time_left)
    symmetric_spread = float(spreads.mean())
    symmetric_hit = A * math.exp(-k * symmetric_spread / 2) * dt
    move = sigma * math.sqrt(dt)

    s = np.full(paths, s0)
    q = np.full(paths, float(q0))
    x = np.zeros(paths)
    q_sym = q.copy()
    x_sym = np.zeros(paths)
    for i in range(steps):
        half = spreads[i] / 2
        reservation = s - q * (gamma * sigma**2 * time_left[i])
        ask = reservation + half
        bid = reservation - half
        ask_draw = rng.random(paths)
        bid_draw = rng.random(paths)
        sold = ask_draw < A * np.exp(-k * (ask - s)) * dt
        bought = bid_draw < A * np.exp(-k * (s - bid)) * dt
        x += np.where(sold, ask, 0.0) - np.where(bought, bid, 0.0)
        q += bought.astype(float) - sold
        sym_sold = ask_draw < symmetric_hit
        sym_bought = bid_draw < symmetric_hit
        x_sym += (sym_sold * (s + symmetric_spread / 2)) - (sym_bought * (s - symmetric_spread / 2))
        q_sym += sym_bought.astype(float) - sym_sold
        s += np.where(rng.random(paths) < 0.5, move, -move)

    def summary(cash: np.ndarray, inventory: np.ndarray, spread: float) -> dict[str, float]:
        profit = cash + inventory * s
        return {
            "profit_mean": float(profit.mean()),
            "profit_std": float(profit.std(ddof=1)),
            "final_q_mean": float(inventory.mean()),
            "final_q_std": float(inventory.std(ddof=1)),
            "spread_mean": spread,
        }

    return {
        "inventory": summary(x, q, symmetric_spread),
        "symmetric": summary(x_sym, q_sym, symmetric_spread),
    }
