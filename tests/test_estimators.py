"""Online estimators: exact arithmetic by hand, recovery of known σ, A, k, and real data."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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
    # The simulator draws independent arrivals on a 10 ms grid: several in one step share
    # the step's time and consecutive ids, which on a venue would mark one sweeping taker
    # order, so they are fed as separate orders (no exchange time to group them by).
    mid = math.nan
    for event in market.events():
        if isinstance(event, BBO):
            mid = float(event.bid_price + event.ask_price) / 2
        else:
            estimator.on_trade(event.receive_ts, float(event.price), mid, side=event.side)


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
        estimator.on_trade(i * S, 100.5, 100.0, side="buy")  # one depth: nothing to fit
    assert not estimator.fit(10 * S)
    mid_only = IntensityEstimator(min_trades=5)
    for i in range(10):
        mid_only.on_trade(i * S, 100.0, 100.0, side="sell")  # no depth at all: no grid either
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


def arrivals(estimator: IntensityEstimator) -> list[float]:
    """The depth of every arrival in the window, as the fit sees it."""
    return [depth for _, depth in estimator._window]


def test_intensity_depth_is_signed_by_the_takers_side_and_wrong_side_prints_are_dropped():
    estimator = IntensityEstimator(depth_step=0.25)
    estimator.on_trade(1, 100.5, 100.0, side="buy", exchange_ts=1)  # buy above mid: 0.5
    estimator.on_trade(2, 99.75, 100.0, side="sell", exchange_ts=2)  # sell below mid: 0.25
    estimator.on_trade(3, 99.75, 100.0, side="buy", exchange_ts=3)  # buy below mid: dropped
    estimator.on_trade(4, 100.5, 100.0, side="sell", exchange_ts=4)  # sell above: dropped
    estimator.on_trade(5, 100.0, 100.0, side="sell", exchange_ts=5)  # at the mid: depth 0
    assert arrivals(estimator) == [0.5, 0.25, 0.0]
    assert estimator._counts[:4] == [1, 1, 1, 0]


def test_a_taker_order_split_into_prints_counts_once_at_its_deepest_print():
    estimator = IntensityEstimator(depth_step=0.25)
    # One buy taker order printed three times at one exchange time, consecutive ids; the
    # mid the engine passes moves up as the order eats the ask, but the depth is measured
    # from the mid before its first print.
    for price, mid, trade_id in ((100.25, 100.0, "7"), (100.5, 100.25, "8"), (100.75, 100.5, "9")):
        estimator.on_trade(10, price, mid, side="buy", exchange_ts=5, trade_id=trade_id)
    assert arrivals(estimator) == [0.75]
    assert estimator._counts[3] == 1 and sum(estimator._counts) == 1
    # The same time and side but a gap in the ids: another taker order.
    estimator.on_trade(11, 100.25, 100.0, side="buy", exchange_ts=5, trade_id="11")
    # Adjacent, no numeric id: one order when time and side agree, two when the side flips.
    estimator.on_trade(12, 99.75, 100.0, side="sell", exchange_ts=6)
    estimator.on_trade(12, 99.5, 100.25, side="sell", exchange_ts=6)
    estimator.on_trade(12, 100.25, 100.0, side="buy", exchange_ts=6)
    assert arrivals(estimator) == [0.75, 0.25, 0.5, 0.25]
    assert estimator._counts[:4] == [0, 2, 1, 1]


def test_a_wrong_side_first_print_leaves_the_order_to_its_later_prints():
    estimator = IntensityEstimator(depth_step=0.25)
    estimator.on_trade(1, 99.75, 100.0, side="buy", exchange_ts=1, trade_id=1)  # dropped
    estimator.on_trade(1, 100.5, 100.25, side="buy", exchange_ts=1, trade_id=2)  # same order
    assert arrivals(estimator) == [0.5]


def test_the_depth_grid_follows_the_depth_scale_and_keeps_every_count():
    estimator = IntensityEstimator(window_s=60.0, refit_interval_s=1.0, min_trades=50)
    rng = np.random.default_rng(5)

    def orders(start_s: int, seconds: int, k: float) -> None:
        for i in range(seconds * 20):
            ts = (start_s * 20 + i) * S // 20
            side = "buy" if i % 2 else "sell"
            depth = float(rng.exponential(1 / k))
            price = 100.0 + depth if side == "buy" else 100.0 - depth
            estimator.on_trade(ts, price, 100.0, side=side, exchange_ts=ts, trade_id=None)

    orders(0, 120, k=10.0)
    # 95th percentile at 60% of 20 buckets: 3/k / 12 = 0.025, from a sample
    first_step = estimator.depth_step
    assert 0.01 < first_step < 0.05
    assert estimator.k == pytest.approx(10.0, rel=0.15)
    orders(120, 120, k=0.5)  # twenty times deeper: a grid frozen at the start sees one bucket
    assert estimator.depth_step == pytest.approx(3 / 0.5 / 12, rel=0.25)
    assert estimator.k == pytest.approx(0.5, rel=0.15)
    assert sum(estimator._counts) == len(estimator._window)
    assert estimator.rebins >= 2


def test_the_estimator_survives_pickling_mid_order():
    estimator = IntensityEstimator(depth_step=0.25)
    estimator.on_trade(1, 100.25, 100.0, side="buy", exchange_ts=1, trade_id=1)
    clone = pickle.loads(pickle.dumps(estimator))
    clone.on_trade(1, 100.75, 100.25, side="buy", exchange_ts=1, trade_id=2)
    assert arrivals(clone) == [0.75] and clone._counts[3] == 1 and sum(clone._counts) == 1
    assert arrivals(estimator) == [0.25]


def synthetic_taker_orders(A, k, seconds, seed, max_prints, wrong_side_share):
    """Poisson taker orders on each side at rate A, depth ~ Exp(k): λ(δ) = A·e^{−kδ}.

    Each order is split into 1..max_prints prints walking out to its depth, with the mid the
    engine would pass moving behind it; wrong-side prints of their own are sprinkled in.
    Yields on_trade arguments.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.poisson(2 * A * seconds))
    noise = int(rng.poisson(n * wrong_side_share))
    times = np.sort(rng.uniform(0, seconds, n + noise))
    wrong = np.zeros(n + noise, dtype=bool)
    wrong[rng.choice(n + noise, noise, replace=False)] = True
    trade_id = 0
    for t, is_wrong in zip(times.tolist(), wrong.tolist(), strict=True):
        ts = int(t * S)
        side = "buy" if rng.random() < 0.5 else "sell"
        sign = 1.0 if side == "buy" else -1.0
        depth = float(rng.exponential(1 / k))
        if is_wrong:
            depth = -depth - 1e-9
        prints = 1 if is_wrong else int(rng.integers(1, max_prints + 1))
        mid = 1000.0
        for j in range(1, prints + 1):
            trade_id += 1
            price = 1000.0 + sign * depth * j / prints
            yield ts, price, mid, side, ts, str(trade_id)
            mid = 1000.0 + sign * depth * j / prints / 2  # the book moved behind the order
        trade_id += 1  # the next order's ids do not follow on


@settings(max_examples=20, deadline=None)
# A grid re-binned at the fit used to be fitted with the old histogram's counts (k 0.62).
@example(rate=2.0, decay=1.0, seed=8420, max_prints=1, wrong_side_share=0.0625490966674904)
@given(
    rate=st.floats(2.0, 400.0),
    decay=st.floats(0.05, 50.0),
    seed=st.integers(0, 2**32 - 1),
    max_prints=st.integers(1, 6),
    wrong_side_share=st.floats(0.0, 0.6),
)
def test_intensity_recovers_known_A_and_k_from_split_orders_and_wrong_side_noise(
    rate, decay, seed, max_prints, wrong_side_share
):
    seconds = 8000.0 / rate  # about 16,000 orders whatever the rate
    estimator = IntensityEstimator(window_s=1e6, refit_interval_s=1e6)
    for ts, price, mid, side, exchange_ts, trade_id in synthetic_taker_orders(
        rate, decay, seconds, seed, max_prints, wrong_side_share
    ):
        estimator.on_trade(ts, price, mid, side=side, exchange_ts=exchange_ts, trade_id=trade_id)
    assert estimator.fit(int(seconds * S))
    assert (estimator.A, estimator.k) == pytest.approx((rate, decay), rel=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [{"depth_step": 0}, {"window_s": 0}, {"max_depth_steps": 3}, {"min_trades": 0},
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
            yield event.receive_ts, mid, event


@pytest.mark.slow
@pytest.mark.parametrize("name", ["spot/btcusdt_20240808.gz", "usdm/ethusdt_20240808.gz"])
def test_estimators_on_recorded_binance_traffic(shared_data, name):
    path = SHARED_DATA / "binance" / name
    volatility = VolatilityEstimator(interval_s=1.0, half_life_s=1e12)
    intensity = IntensityEstimator(window_s=3600.0)
    first: tuple[int, float] | None = None
    last_in_second: dict[int, float] = {}
    for ts, mid, trade in binance_mids_and_trades(path):
        if trade is None:
            volatility.update(ts, mid)
            first = first or (ts, mid)
            last_in_second[(ts - first[0]) // S] = mid
        else:
            intensity.on_trade(
                ts, float(trade.price), mid, side=trade.side,
                exchange_ts=trade.exchange_ts, trade_id=trade.trade_id,
            )
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
