"""The online direction model: learning a synthetic signal, prequential discipline, the clock."""

from __future__ import annotations

import pickle
import random
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import BBO, Trade
from models.predictor import DirectionPredictor, PredictorConfig, PredictSession

MS = 1_000_000
S = 1_000 * MS
INTERVAL = 100 * MS
CONFIG = PredictorConfig(horizon_ns=S, sample_interval_ns=INTERVAL, metrics_window=500)
STEPS_PER_HORIZON = CONFIG.horizon_ns // INTERVAL


def replay_signal(predictor: DirectionPredictor, n: int, seed: int, predictable: bool) -> None:
    """A mid whose move over the next horizon follows `signal` 90% of the time, or never.

    The mid moves one tick on each horizon boundary, so every settled sample is a move.
    """
    rng = random.Random(seed)
    mid_sum = D(200_000)
    signal = 1.0
    for step in range(n):
        if step % STEPS_PER_HORIZON == 0:
            if step:
                follows = rng.random() < 0.9
                up = (signal > 0) == follows if predictable else rng.random() < 0.5
                mid_sum += D(2) if up else D(-2)
            signal = rng.gauss(0.0, 1.0)
        x = {"signal": signal, "noise": rng.gauss(0.0, 1.0)}
        predictor.step(step * INTERVAL, mid_sum, x)


def test_learns_a_predictable_direction():
    predictor = DirectionPredictor(CONFIG)
    replay_signal(predictor, 20_000, seed=1, predictable=True)
    totals = predictor.score.totals()
    assert totals["accuracy"] > 0.8
    assert totals["last_move_accuracy"] < 0.6 and totals["majority_accuracy"] < 0.6
    assert totals["log_loss"] < totals["baseline_log_loss"]


def test_the_imbalance_rule_is_scored_beside_the_model():
    """Live scores carry the touch-imbalance rule, the strongest baseline at short horizons:
    a signal that *is* the imbalance is no edge for the model."""

    class AsImbalance:
        def __init__(self):
            self.inner = DirectionPredictor(CONFIG)
            self.score = self.inner.score

        def step(self, ts, mid_sum, x):
            return self.inner.step(ts, mid_sum, {**x, "imbalance_l1": x["signal"]})

    predictor = AsImbalance()
    replay_signal(predictor, 20_000, seed=1, predictable=True)
    totals = predictor.score.totals()
    assert totals["imbalance_accuracy"] > 0.85
    assert totals["accuracy"] < totals["imbalance_accuracy"] + 0.02


def test_is_no_better_than_the_baseline_on_coin_flips():
    predictor = DirectionPredictor(CONFIG)
    replay_signal(predictor, 20_000, seed=2, predictable=False)
    totals = predictor.score.totals()
    assert totals["moves"] > 10_000
    assert 0.45 < totals["accuracy"] < 0.55
    assert abs(totals["accuracy"] - totals["majority_accuracy"]) < 0.05


class SpyModel:
    """Records what it was asked and taught, to check the order against the clock."""

    def __init__(self) -> None:
        self.now = 0
        self.learned: list[tuple[int, int, bool]] = []  # (sample ts, learn time, label)

    def predict_proba_one(self, x: dict) -> dict:
        return {True: 0.7, False: 0.3}

    def learn_one(self, x: dict, y: bool) -> None:
        self.learned.append((int(x["ts"]), self.now, y))


@settings(max_examples=60, deadline=None)
@given(moves=st.lists(st.sampled_from([-2, 0, 0, 2]), min_size=1, max_size=120))
def test_never_learns_a_label_before_its_horizon(moves):
    spy = SpyModel()
    predictor = DirectionPredictor(CONFIG, model=spy)
    mid_sums = [D(200_000)]
    for move in moves:
        mid_sums.append(mid_sums[-1] + move)
    for step, mid_sum in enumerate(mid_sums):
        ts = step * INTERVAL
        spy.now = ts
        predictor.step(ts, mid_sum, {"ts": float(ts)})
    for sample_ts, learned_at, up in spy.learned:
        assert learned_at >= sample_ts + CONFIG.horizon_ns
        # The label is the move from the sample to exactly one horizon later.
        start = mid_sums[sample_ts // INTERVAL]
        end = mid_sums[(sample_ts + CONFIG.horizon_ns) // INTERVAL]
        assert end != start and up == (end > start)
    settled = max(len(mid_sums) - STEPS_PER_HORIZON, 0)
    totals = predictor.score.totals()
    moves_scored = 0 if totals is None else totals["moves"]
    assert moves_scored == len(spy.learned)
    assert moves_scored + predictor.score.flats == settled


def test_flats_are_not_learned_but_shrink_the_typical_move():
    spy = SpyModel()
    predictor = DirectionPredictor(CONFIG, model=spy)
    # Horizons of +1.0 price (mid_sum +2), then flat ones.
    for step in range(4 * STEPS_PER_HORIZON + 1):
        mid_sum = D(200_000) + 2 * min(step // STEPS_PER_HORIZON, 2)
        spy.now = step * INTERVAL
        forecast = predictor.step(step * INTERVAL, mid_sum, {"ts": float(step * INTERVAL)})
    assert predictor.score.flats > 0
    assert all(up for _, _, up in spy.learned)
    typical = predictor.score.typical_move()
    assert 0.0 < typical < 1.0
    assert forecast.prob_up == pytest.approx(0.7) and forecast.prob_down == pytest.approx(0.3)
    assert forecast.expected_move == pytest.approx(0.4 * typical)


def test_untrained_hoeffding_tree_is_a_coin_flip():
    predictor = DirectionPredictor(PredictorConfig(model="hoeffding"))
    forecast = predictor.step(0, D(200), {"a": 1.0})
    assert (forecast.prob_up, forecast.prob_down, forecast.expected_move) == (0.5, 0.5, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"horizon_ns": 0},
        {"sample_interval_ns": -1},
        {"horizon_ns": S, "sample_interval_ns": 300 * MS},
        {"model": "oracle"},
        {"metrics_window": 0},
        {"max_gap_ns": 1},
    ],
)
def test_bad_predictor_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        PredictorConfig(**kwargs)


# -- the session's clock ------------------------------------------------------------------


def bbo(ts: int, bid: str = "99", ask: str = "101") -> BBO:
    return BBO(
        venue="binance", symbol="BTC/USDT", exchange_ts=ts, receive_ts=ts,
        bid_price=D(bid), bid_size=D(1), ask_price=D(ask), ask_size=D(1),
    )


def session() -> PredictSession:
    return PredictSession("binance", "BTC/USDT", CONFIG)


def test_samples_on_the_grid_after_every_event_of_the_instant():
    s = session()
    assert s.on_event(bbo(50 * MS)) == []  # grid starts at 100 ms
    assert s.on_event(bbo(100 * MS, "98")) == []  # still part of the 100 ms instant
    out = s.on_event(bbo(350 * MS))
    assert [p.ts for p in out] == [100 * MS, 200 * MS, 300 * MS]
    assert all(p.venue == "binance" and p.symbol == "BTC/USDT" for p in out)
    assert all(p.horizon_ns == S and p.model == "logreg" for p in out)
    assert all(p.prob_up + p.prob_down == pytest.approx(1.0) for p in out)
    assert out[0].rolling_accuracy is None


def test_no_prediction_without_a_touch():
    s = session()
    for ts in (0, 10 * INTERVAL):
        trade = Trade(
            venue="binance", symbol="BTC/USDT", exchange_ts=ts, receive_ts=ts,
            price=D(100), size=D(1), side="buy",
        )
        assert s.on_event(trade) == []


def test_a_long_silence_restarts_the_clock_and_drops_pending_forecasts():
    s = session()
    for step in range(1, 30):
        s.on_event(bbo(step * INTERVAL + 1, "99", str(101 + step % 2)))
    settled_before = s.score.flats + (s.score.totals() or {}).get("moves", 0)
    late = 30 * INTERVAL + CONFIG.max_gap_ns + 5
    assert s.on_event(bbo(late)) == []  # no burst of stale forecasts across the gap
    out = s.on_event(bbo(late + 2 * INTERVAL))
    assert [p.ts for p in out] == [late - 5 + INTERVAL, late - 5 + 2 * INTERVAL]
    s.on_event(bbo(late + 30 * INTERVAL))
    # Forecasts from before the gap were dropped, not settled against a mid a minute later.
    settled_after = s.score.flats + (s.score.totals() or {}).get("moves", 0)
    assert settled_after - settled_before <= 30 - STEPS_PER_HORIZON


def test_an_event_from_the_past_counts_as_now():
    s = session()
    s.on_event(bbo(500 * MS))
    assert s.on_event(bbo(100 * MS)) == []
    assert [p.ts for p in s.on_event(bbo(650 * MS))] == [500 * MS, 600 * MS]


def test_session_survives_a_pickle_round_trip():
    """Bytewax recovery snapshots the session: it must pickle and carry on identically."""
    s = session()
    for step in range(1, 40):
        s.on_event(bbo(step * 37 * MS, str(99 + step % 3), str(101 + step % 3)))
    copy = pickle.loads(pickle.dumps(s))
    tail = [bbo(step * 37 * MS, "99", str(101 + step % 2)) for step in range(40, 80)]
    assert [s.on_event(e) for e in tail] == [copy.on_event(e) for e in tail]
