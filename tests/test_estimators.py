"""Online estimators: exact arithmetic by hand, recovery of known σ, A, k, and real data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from connectors.replay.binance_hft import iter_events
from connectors.simulated_market import SimulatedMarket
from models.estimators import IntensityEstimator, VolatilityEstimator, fit_exponential_intensity
from models.events import BBO, Trade
from tests.conftest import SHARED_DATA

S = 1_000_000_000


# --- VolatilityEstimator ------------------------------------------------------------------

def test_volatility_warm_up_and_first_samples_by_hand():
    estimator = VolatilityEstimator(
        interval_s=1.0, half_life_s=1.0, initial_sigma=0.7, min_samples=2
    )
    estimator.update(0, 100.0)
    estimator.update(S // 2, 101.0)
    assert estimator.sigma == 0.7 and not estimator.ready  # no interval closed yet
    estimator.update(S, 101.0)  # closes [0, 1 s): change 1
    assert estimator.sigma == pytest.approx(1.0) and not estimator.ready
    estimator.update(2 * S, 103.0)  # closes [1 s, 2 s): change 0, since 103 arrived at 2 s
    # decay 0.5 per interval: (0.5·1 + 0)/(0.5 + 1)
    assert estimator.sigma == pytest.approx(math.sqrt(0.5 / 1.5)) and estimator.ready
    estimator.update(3 * S, 103.0)  # closes [2 s, 3 s): change 2
    assert estimator.sigma == pytest.approx(math.sqrt((0.25 + 4) / 1.75))


def test_volatility_gap_counts_the_move_once_and_the_quiet_intervals_after_it():
    estimator = VolatilityEstimator(interval_s=1.0, half_life_s=1.0)
    estimator.update(0, 100.0)
    estimator.update(S // 2, 102.0)
    estimator.update(3 * S + 1, 102.0)  # three intervals close at once
    # the move of 2 in the first, two quiet ones after: (0.25·4)/(1 + 0.5 + 0.25)
    assert estimator.sigma == pytest.approx(math.sqrt(1.0 / 1.75))


def test_volatility_recovers_a_known_sigma_from_irregular_updates():
    rng = np.random.default_rng(7)
    sigma, duration_s = 0.5, 4 * 3600
    gaps = rng.exponential(0.3, int(duration_s / 0.3))
    times = np.cumsum(gaps)
    mids = 1000 + np.cumsum(sigma * np.sqrt(gaps) * rng.standard_normal(len(gaps)))
    estimator = VolatilityEstimator(interval_s=1.0, half_life_s=1800.0)
    for t, mid in zip(times.tolist(), mids.tolist(), strict=True):
        estimator.update(int(t * S), mid)
    assert estimator.ready
    assert estimator.sigma == pytest.approx(sigma, rel=0.06)


def test_volatility_recovers_the_simulated_markets_sigma():
    market = SimulatedMarket(seed=3, sigma=2.0, dt=0.01, horizon=600.0, A=0.0)
    estimator = VolatilityEstimator(interval_s=0.5, half_life_s=1e9)
    for event in market.events():
        estimator.update(event.receive_ts, float(event.bid_price + event.ask_price) / 2)
    assert estimator.sigma == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [{"interval_s": 0}, {"half_life_s": -1}, {"initial_sigma": -1}, {"min_samples": 0}]
)
def test_volatility_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        VolatilityEstimator(**kwargs)


def test_volatility_rejects_a_non_finite_mid():
    with pytest.raises(ValueError, match="finite"):
        VolatilityEstimator().update(0, math.nan)


# --- IntensityEstimator -------------------------------------------------------------------

def feed(estimator: IntensityEstimator, market: SimulatedMarket) -> None:
    mid = math.nan
    for event in market.events():
        if isinstance(event, BBO):
            mid = float(event.bid_price + event.ask_price) / 2
        else:
            estimator.on_trade(event.receive_ts, float(event.price), mid)


@pytest.mark.parametrize("depth_step", [0.1, None])
def test_intensity_recovers_the_simulated_markets_A_and_k(depth_step):
    market = SimulatedMarket(seed=11, A=140.0, k=1.5, horizon=60.0)
    estimator = IntensityEstimator(depth_step=depth_step, window_s=3600.0, max_depth_steps=30)
    feed(estimator, market)
    assert estimator.fit(market.end_ns)
    assert estimator.ready
    assert (estimator.A, estimator.k) == pytest.approx((140.0, 1.5), rel=0.05)


def test_intensity_window_forgets_old_trades():
    calm = SimulatedMarket(seed=1, A=50.0, k=1.5, horizon=60.0)
    shallow = SimulatedMarket(seed=2, A=50.0, k=4.0, horizon=60.0, start_ns=calm.end_ns)
    estimator = IntensityEstimator(depth_step=0.05, window_s=30.0)
    feed(estimator, calm)
    assert estimator.k == pytest.approx(1.5, rel=0.15)  # refitted along the way
    feed(estimator, shallow)
    assert estimator.k == pytest.approx(4.0, rel=0.15)


def test_intensity_is_not_ready_on_too_few_trades_or_no_decay():
    estimator = IntensityEstimator(depth_step=0.1, min_trades=5, initial_A=3.0, initial_k=2.0)
    assert not estimator.fit(0)
    for i in range(10):
        estimator.on_trade(i * S, 100.5, 100.0)  # every trade at one depth: nothing to fit
    assert not estimator.fit(10 * S)
    mid_only = IntensityEstimator(min_trades=5)
    for i in range(10):
        mid_only.on_trade(i * S, 100.0, 100.0)  # no depth at all: no bucket size either
    assert mid_only.depth_step is None and not mid_only.fit(10 * S)
    assert (estimator.A, estimator.k, estimator.ready) == (3.0, 2.0, False)


def test_intensity_fit_by_hand():
    # depths reached: ≥0 by 8 trades, ≥1 by 4, ≥2 by 2, ≥3 by 1 over 2 s: rate halves per
    # unit depth, so k = ln 2 and A = 8/2 = 4 exactly.
    counts = [4, 2, 1, 1, 0, 0]
    assert fit_exponential_intensity(counts, 1.0, 2.0) == pytest.approx((4.0, math.log(2)))
    assert fit_exponential_intensity([0, 0, 5, 0], 1.0, 1.0) is None


def test_intensity_skips_depths_inside_the_spread():
    # Nothing traded shallower than 2: the flat counts at 0 and 1 must not enter the fit.
    counts = [0, 0, 4, 2, 1, 1]
    assert fit_exponential_intensity(counts, 1.0, 2.0) == pytest.approx((16.0, math.log(2)))


def test_intensity_calibrates_its_depth_step_once_from_the_first_trades():
    estimator = IntensityEstimator(min_trades=4)
    for i, depth in enumerate([0.1, 0.3, 0.1, 0.3]):
        estimator.on_trade(i, 100.0 + depth, 100.0)
    assert estimator.depth_step == pytest.approx(0.05)
    estimator.on_trade(5, 110.0, 100.0)
    assert estimator.depth_step == pytest.approx(0.05)


@pytest.mark.parametrize(
    "kwargs",
    [{"depth_step": 0}, {"window_s": 0}, {"max_depth_steps": 1}, {"min_trades": 0},
     {"initial_A": 0}, {"initial_k": -1}, {"refit_interval_s": -1}],
)
def test_intensity_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        IntensityEstimator(**kwargs)


def test_intensity_rejects_a_trade_without_a_mid():
    with pytest.raises(ValueError, match="finite"):
        IntensityEstimator().on_trade(0, 100.0, math.nan)


# --- Real recordings ----------------------------------------------------------------------

def binance_mids_and_trades(path):
    mid = None
    for event in iter_events(path):
        if isinstance(event, BBO):
            mid = float(event.bid_price + event.ask_price) / 2
            yield event.receive_ts, mid, None
        elif isinstance(event, Trade) and mid is not None:
            yield event.receive_ts, mid, float(event.price)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["spot/btcusdt_20240808.gz", "usdm/ethusdt_20240808.gz"])
def test_estimators_on_recorded_binance_traffic(shared_data, name):
    path = SHARED_DATA / "binance" / name
    volatility = VolatilityEstimator(interval_s=1.0, half_life_s=1e12)
    intensity = IntensityEstimator(window_s=3600.0)
    first: tuple[int, float] | None = None
    last_in_second: dict[int, float] = {}
    for ts, mid, price in binance_mids_and_trades(path):
        if price is None:
            volatility.update(ts, mid)
            first = first or (ts, mid)
            last_in_second[(ts - first[0]) // S] = mid
        else:
            intensity.on_trade(ts, price, mid)
    # With an effectively infinite half-life the EWMA is the plain mean of the squared
    # changes of the mid sampled each second (the last mid before each tick of the clock
    # started at the first update): recompute that in batch.
    sampled = [first[1]]
    for second in range(max(last_in_second)):
        sampled.append(last_in_second.get(second, sampled[-1]))
    changes = np.diff(sampled)
    assert volatility.sigma == pytest.approx(float(np.sqrt(np.mean(changes**2))), rel=1e-6)
    assert volatility.ready and volatility.sigma > 0
    assert intensity.ready
    assert intensity.A > 0 and intensity.k > 0
