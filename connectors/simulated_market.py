"""The built-in simulated market: Avellaneda & Stoikov's world as a stream of events.

The mid is an arithmetic Brownian motion sampled every `dt`. Each step emits a BBO (a
fixed half-spread of whole ticks either side of the mid) and then the step's trades:
buy and sell market orders arrive Poisson(A·dt) each, and each reaches a depth
δ ~ Exponential(k) from the mid. A buy prints at mid + δ rounded *down* onto the grid, a
sell at mid − δ rounded *up*: the last grid price the order reached. So for a resting quote
on the grid at distance δ_q from the mid, "a trade printed at or through my price" (the
paper venue's fill rule) happens with intensity A·e^{−k·δ_q} exactly, the A–S assumption.
Trades may print inside the BBO: the BBO is only the visible touch, the A–S flow is what
trades.

Time is in units of `time_unit_ns` (seconds by default): `s0`, `sigma` (price per √unit),
`A` (per unit), `k` (per price unit), `dt` and `horizon` (units). The defaults are the
paper's section 4. `demo()` stretches the paper's market over a few minutes of
wall-clock-like time for `quoteflow run`. Deterministic per seed: every call to `events()`
replays the same stream. Keep s0 well above σ·√horizon: prices are not floored at zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from connectors.venues.market_cache import instrument_for
from models import as_paper
from models.events import BBO, Trade
from models.instrument import Instrument

NS_PER_S = 1_000_000_000
# Fixed so the stream for a seed does not depend on how it is consumed.
CHUNK_STEPS = 4096
DEFAULT_START_NS = 1_735_689_600 * NS_PER_S  # 2025-01-01 00:00:00 UTC


@dataclass(frozen=True, slots=True)
class VolatilityBursts:
    """A seeded two-state regime: calm, and bursts where σ is `multiplier` times larger.

    A burst starts with probability `rate`·dt per calm step and ends with probability
    dt/`mean_duration` per step (rate and duration in the market's time units).
    """

    rate: float
    mean_duration: float
    multiplier: float

    def __post_init__(self) -> None:
        if self.rate < 0 or self.mean_duration <= 0 or self.multiplier <= 0:
            raise ValueError("bursts need rate >= 0, mean_duration > 0 and multiplier > 0")


# About one burst every two simulated minutes, 15 s long, at three times the volatility.
DEMO_BURSTS = VolatilityBursts(rate=0.5, mean_duration=0.25, multiplier=3.0)


class SimulatedMarket:
    def __init__(
        self,
        seed: int,
        s0: float = as_paper.S0,
        sigma: float = as_paper.SIGMA,
        A: float = as_paper.A,
        k: float = as_paper.K,
        dt: float = as_paper.DT,
        horizon: float = as_paper.T,
        trade_size: Decimal = Decimal(1),
        instrument: Instrument | None = None,
        start_ns: int = DEFAULT_START_NS,
        time_unit_ns: int = NS_PER_S,
        half_spread_ticks: int = 1,
        touch_size: Decimal = Decimal(10),
        bursts: VolatilityBursts | None = None,
    ) -> None:
        if s0 <= 0 or sigma < 0 or A < 0 or k <= 0:
            raise ValueError("need s0 > 0, sigma >= 0, A >= 0 and k > 0")
        if dt <= 0 or horizon < dt or time_unit_ns <= 0:
            raise ValueError("need dt > 0, horizon >= dt and time_unit_ns > 0")
        if trade_size <= 0 or touch_size <= 0 or half_spread_ticks < 1:
            raise ValueError("need trade_size > 0, touch_size > 0 and half_spread_ticks >= 1")
        self.instrument = instrument or instrument_for("sim", "SIM/USD")
        self.seed = seed
        self.s0 = s0
        self.sigma = sigma
        self.A = A
        self.k = k
        self.dt = dt
        self.steps = round(horizon / dt)
        self.trade_size = trade_size
        self.start_ns = start_ns
        self.step_ns = round(dt * time_unit_ns)
        self.half_spread_ticks = half_spread_ticks
        self.touch_size = touch_size
        self.bursts = bursts

    @classmethod
    def demo(
        cls,
        seed: int,
        duration_s: float = 300.0,
        step_s: float = 0.1,
        bursts: VolatilityBursts | None = DEMO_BURSTS,
    ) -> SimulatedMarket:
        """The paper's market with one time unit per simulated minute, for `quoteflow run`.

        In seconds that is σ = 2/√60 ≈ 0.26 price/√s, A = 140/60 ≈ 2.3 hits/s at the mid,
        k = 1.5, so the models' default γ = 0.1 behaves as in the paper.
        """
        minute_ns = 60 * NS_PER_S
        return cls(
            seed,
            dt=step_s * NS_PER_S / minute_ns,
            horizon=duration_s * NS_PER_S / minute_ns,
            time_unit_ns=minute_ns,
            bursts=bursts,
        )

    @property
    def end_ns(self) -> int:
        """Timestamp of the session's end (the finite-horizon models' T)."""
        return self.start_ns + self.steps * self.step_ns

    def events(self) -> Iterator[BBO | Trade]:
        rng = np.random.default_rng(self.seed)
        instrument = self.instrument
        venue, symbol, tick = instrument.venue, instrument.symbol, instrument.tick_size
        tick_f = float(tick)
        half = self.half_spread_ticks
        touch, trade_size = self.touch_size, self.trade_size
        step_ns, start_ns = self.step_ns, self.start_ns
        arrivals = self.A * self.dt
        mean_depth = 1.0 / self.k
        diffusion = self.sigma * math.sqrt(self.dt)
        bursts = self.bursts
        start_p = bursts.rate * self.dt if bursts else 0.0
        end_p = self.dt / bursts.mean_duration if bursts else 0.0
        burst_diffusion = diffusion * bursts.multiplier if bursts else diffusion
        in_burst = False
        mid = self.s0
        seq = 0
        for chunk_start in range(0, self.steps, CHUNK_STEPS):
            n = min(CHUNK_STEPS, self.steps - chunk_start)
            # Python lists: indexing numpy arrays element by element is several times slower.
            shocks = rng.standard_normal(n).tolist()
            regime_draws = rng.random(n).tolist() if bursts else None
            buys = rng.poisson(arrivals, n).tolist()
            sells = rng.poisson(arrivals, n).tolist()
            depths = rng.exponential(mean_depth, sum(buys) + sum(sells)).tolist()
            next_depth = 0
            for j in range(n):
                step = chunk_start + j
                if step:
                    mid += (burst_diffusion if in_burst else diffusion) * shocks[j]
                if regime_draws is not None:
                    in_burst = regime_draws[j] >= end_p if in_burst else regime_draws[j] < start_p
                ts = start_ns + step * step_ns
                seq += 1
                yield BBO(
                    venue=venue, symbol=symbol, exchange_ts=ts, receive_ts=ts, seq=seq,
                    bid_price=math.floor(mid / tick_f - half) * tick, bid_size=touch,
                    ask_price=math.ceil(mid / tick_f + half) * tick, ask_size=touch,
                )
                for side, count in (("buy", buys[j]), ("sell", sells[j])):
                    for _ in range(count):
                        depth = depths[next_depth]
                        next_depth += 1
                        if side == "buy":
                            price = math.floor((mid + depth) / tick_f) * tick
                        else:
                            price = math.ceil((mid - depth) / tick_f) * tick
                        seq += 1
                        yield Trade(
                            venue=venue, symbol=symbol, exchange_ts=ts, receive_ts=ts, seq=seq,
                            price=price, size=trade_size, side=side, trade_id=str(seq),
                        )
