"""The simulated market: a deterministic event stream with the A–S fill statistics."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import numpy as np
import pytest

from connectors.simulated_market import SimulatedMarket, VolatilityBursts
from connectors.venues.market_cache import instrument_for
from models.events import BBO, Trade, decode, encode

SIM = instrument_for("sim", "SIM/USD")


def encoded(market: SimulatedMarket) -> list[bytes]:
    return [encode(event) for event in market.events()]


def mids(market: SimulatedMarket) -> np.ndarray:
    return np.array(
        [float(e.bid_price + e.ask_price) / 2 for e in market.events() if isinstance(e, BBO)]
    )


def test_deterministic_per_seed_and_replayable():
    market = SimulatedMarket(seed=5)
    first = encoded(market)
    assert first == encoded(market) == encoded(SimulatedMarket(seed=5))
    assert first != encoded(SimulatedMarket(seed=6))


def test_stream_shape_grid_and_round_trip():
    market = SimulatedMarket(seed=1)
    events = list(market.events())
    bbos = [e for e in events if isinstance(e, BBO)]
    trades = [e for e in events if isinstance(e, Trade)]
    assert isinstance(events[0], BBO) and len(bbos) == 200  # T/dt steps of the paper
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(a.exchange_ts <= b.exchange_ts for a, b in itertools.pairwise(events))
    assert bbos[1].exchange_ts - bbos[0].exchange_ts == 5_000_000  # dt = 5 ms
    assert market.end_ns == bbos[0].exchange_ts + 1_000_000_000
    for bbo in bbos:
        assert bbo.ask_price - bbo.bid_price >= 2 * SIM.tick_size
        SIM.validate(bbo.bid_price, Decimal(1))
        SIM.validate(bbo.ask_price, Decimal(1))
    for trade in trades:
        SIM.validate(trade.price, trade.size)
        assert trade.side in ("buy", "sell") and trade.venue == "sim"
    assert all(decode(encode(event)) == event for event in events)


def test_trade_counts_and_mid_increments_follow_the_parameters():
    market = SimulatedMarket(seed=2, horizon=100.0)  # 20,000 steps
    trades = [e for e in market.events() if isinstance(e, Trade)]
    expected = 140.0 * 100.0  # per side, Poisson: sd ≈ 118
    for side in ("buy", "sell"):
        assert abs(sum(t.side == side for t in trades) - expected) < 4 * math.sqrt(expected)
    increments = np.diff(mids(market))
    # The BBO is the mid rounded outward onto the grid: ±1 tick of noise on σ√dt ≈ 0.14.
    assert increments.std() == pytest.approx(2.0 * math.sqrt(0.005), rel=0.05)


@pytest.mark.parametrize("distance", [0.2, 0.7, 1.5])
def test_a_resting_quote_is_hit_with_the_avellaneda_stoikov_intensity(distance):
    """The paper venue's rule (a trade at or through the price fills) against the model."""
    market = SimulatedMarket(seed=3, horizon=100.0)
    tick = float(SIM.tick_size)
    hits = steps = 0
    ask = bid = None
    ask_hit = bid_hit = False
    for event in market.events():
        if isinstance(event, BBO):
            hits += ask_hit + bid_hit
            steps += 1
            mid = float(event.bid_price + event.ask_price) / 2
            ask = math.ceil((mid + distance) / tick) * tick
            bid = math.floor((mid - distance) / tick) * tick
            ask_hit = bid_hit = False
        elif event.side == "buy":
            ask_hit = ask_hit or float(event.price) >= ask - 1e-9
        else:
            bid_hit = bid_hit or float(event.price) <= bid + 1e-9
    hits += ask_hit + bid_hit
    # Quoted on the grid at about `distance` from the mid: at least one hit per step with
    # probability 1 − exp(−A e^{−kδ} dt).
    expected = 1 - math.exp(-140.0 * math.exp(-1.5 * distance) * 0.005)
    assert hits / (2 * steps) == pytest.approx(expected, rel=0.06)


def test_demo_session_runs_minutes_at_100ms_steps():
    market = SimulatedMarket.demo(seed=4, duration_s=120.0)
    bbos = [e for e in market.events() if isinstance(e, BBO)]
    assert len(bbos) == 1200
    assert bbos[1].exchange_ts - bbos[0].exchange_ts == 100_000_000
    assert market.end_ns - market.start_ns == 120_000_000_000


def test_volatility_bursts_raise_realised_volatility_deterministically():
    bursts = VolatilityBursts(rate=2.0, mean_duration=0.5, multiplier=4.0)
    calm = SimulatedMarket.demo(seed=8, duration_s=600.0, bursts=None)
    bursty = SimulatedMarket.demo(seed=8, duration_s=600.0, bursts=bursts)
    assert encoded(bursty) == encoded(SimulatedMarket.demo(seed=8, duration_s=600.0, bursts=bursts))
    assert np.diff(mids(bursty)).std() > 1.5 * np.diff(mids(calm)).std()


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"s0": -1}, {"sigma": -1}, {"A": -1}, {"dt": 0}, {"horizon": 0.001},
     {"trade_size": Decimal(0)}, {"half_spread_ticks": 0}, {"time_unit_ns": 0}],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        SimulatedMarket(seed=0, **kwargs)


def test_rejects_bad_bursts():
    with pytest.raises(ValueError):
        VolatilityBursts(rate=1.0, mean_duration=0.0, multiplier=2.0)
