"""Online prediction of the mid's direction, evaluated prequentially.

Three layers, each usable alone:

- `DirectionPredictor`: a River classifier of "up" vs "down" over `horizon_ns`, fed samples
  on a fixed grid. At grid instant T it first settles the sample taken at T − horizon (its
  label is the sign of the mid's move since, known at T) — scores the forecast made then,
  then learns from it — and only then forecasts at T. The model therefore never sees a label
  before its horizon has passed: predict at t, learn at t + horizon.
- `PrequentialScore`: rolling and whole-run accuracy and log-loss of those forecasts against
  three naive rules known at forecast time: "last move" (the direction of the latest settled
  move), "majority" (the more frequent direction over the window, whose frequency is also
  the baseline's probability for log-loss) and "imbalance" (up if the touch's bid size is
  at least its ask size: the strongest rule at short horizons, docs/predictions.md).
- `PredictSession`: one instrument's events → features (`models.features`) → a `Prediction`
  per grid instant (every `sample_interval_ns` of event time, not every event).

No-change moves: a horizon over which the mid did not move is "flat". Flats are neither
learned nor scored — the classifier is binary, so prob_up + prob_down = 1 are the chances
of each direction given that the mid moves — but they count in the typical absolute move
(all horizons, flats included), so `expected_move = (prob_up − prob_down) × typical move`
is the unconditional expected change of the mid in price units.

Event time is each event's `receive_ts`: it is monotonic in a recording and is what a live
process knows. The state at instant T includes every event with receive_ts ≤ T, so T is
sampled when the first later event arrives, before that event is applied.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
from river import compose, linear_model, naive_bayes, optim, preprocessing, tree

from models.events import Prediction
from models.features import NS_PER_S, FeatureConfig, Features, GridSampler, Sample

_LOG_LOSS_CLIP = 1e-15


def _logistic_regression() -> Any:
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(0.003)),
    )


def _hoeffding_tree() -> Any:
    return tree.HoeffdingTreeClassifier(grace_period=200)


def _gaussian_naive_bayes() -> Any:
    return naive_bayes.GaussianNB()


# River classifiers by name; every one predicts a bool label (True = up).
MODELS: dict[str, Callable[[], Any]] = {
    "logreg": _logistic_regression,
    "hoeffding": _hoeffding_tree,
    "gaussian_nb": _gaussian_naive_bayes,
}


class PredictorConfig(msgspec.Struct, frozen=True, kw_only=True):
    horizon_ns: int = NS_PER_S
    sample_interval_ns: int = 100_000_000
    model: str = "logreg"
    # Settled horizons (flats included) in the rolling metrics and the typical move.
    metrics_window: int = 1000
    # A longer silence than this is a break in the data: forecasts across it are dropped.
    max_gap_ns: int = 60 * NS_PER_S
    features: FeatureConfig = FeatureConfig()

    def __post_init__(self) -> None:
        if self.sample_interval_ns <= 0 or self.horizon_ns <= 0:
            raise ValueError("horizon_ns and sample_interval_ns must be > 0")
        if self.horizon_ns % self.sample_interval_ns:
            raise ValueError(
                f"horizon_ns {self.horizon_ns} is not a multiple of sample_interval_ns "
                f"{self.sample_interval_ns}"
            )
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {', '.join(sorted(MODELS))}")
        if self.metrics_window < 1:
            raise ValueError(f"metrics_window must be >= 1, got {self.metrics_window}")
        if self.max_gap_ns < self.sample_interval_ns:
            raise ValueError("max_gap_ns must be >= sample_interval_ns")


class Forecast(msgspec.Struct, frozen=True):
    """What `DirectionPredictor.step` says at one grid instant."""

    prob_up: float
    prob_down: float
    expected_move: float


class _Settled(NamedTuple):
    """One settled horizon's contribution to the rolling sums (all zero for a flat)."""

    abs_move: float
    moved: int
    model_hit: int
    last_move_hit: int
    majority_hit: int
    imbalance_hit: int
    ups: int
    model_log_loss: float
    baseline_log_loss: float


_FIELDS = _Settled._fields


class PrequentialScore:
    """Scores of settled forecasts: over the last `window` horizons and over the whole run."""

    __slots__ = ("_sums", "_totals", "_window", "flats")

    def __init__(self, window: int) -> None:
        self._window: deque[_Settled] = deque(maxlen=window)
        self._sums = dict.fromkeys(_FIELDS, 0.0)
        self._totals = dict.fromkeys(_FIELDS, 0.0)
        self.flats = 0

    def add(self, settled: _Settled) -> None:
        window, sums, totals = self._window, self._sums, self._totals
        if len(window) == window.maxlen:
            for name, value in zip(_FIELDS, window[0], strict=True):
                sums[name] -= value
        window.append(settled)
        for name, value in zip(_FIELDS, settled, strict=True):
            sums[name] += value
            totals[name] += value
        self.flats += not settled.moved

    def base_rate(self) -> float:
        """Laplace-smoothed frequency of "up" among the window's moves: the naive probability."""
        return (self._sums["ups"] + 1.0) / (self._sums["moved"] + 2.0)

    def typical_move(self) -> float:
        """Mean absolute change of the mid over a horizon, flats included (price units)."""
        return self._sums["abs_move"] / len(self._window) if self._window else 0.0

    def rolling(self) -> dict[str, float] | None:
        return _ratios(self._sums)

    def totals(self) -> dict[str, float] | None:
        """Whole-run metrics, plus the number of scored moves and of flat horizons."""
        ratios = _ratios(self._totals)
        if ratios is None:
            return None
        return {**ratios, "moves": int(self._totals["moved"]), "flats": self.flats}


def _ratios(sums: dict[str, float]) -> dict[str, float] | None:
    moved = sums["moved"]
    if moved < 1:
        return None
    return {
        "accuracy": sums["model_hit"] / moved,
        "last_move_accuracy": sums["last_move_hit"] / moved,
        "majority_accuracy": sums["majority_hit"] / moved,
        "imbalance_accuracy": sums["imbalance_hit"] / moved,
        "log_loss": sums["model_log_loss"] / moved,
        "baseline_log_loss": sums["baseline_log_loss"] / moved,
    }


class _Pending(msgspec.Struct, array_like=True):
    ts: int
    mid_sum: Decimal  # bid + ask: the mid ×2, exact, so "flat" is decided without rounding
    features: Features
    prob_up: float
    last_move_up: bool | None
    imbalance_up: bool
    base_rate: float


class DirectionPredictor:
    """Predict at t, learn at t + horizon; `step` must be called on the sample grid.

    `model` overrides the configured River model (any object with `predict_proba_one` and
    `learn_one` taking bool labels).
    """

    __slots__ = ("_horizon_ns", "_last_move_up", "_model", "_pending", "score")

    def __init__(self, config: PredictorConfig, model: Any = None) -> None:
        self._model = model if model is not None else MODELS[config.model]()
        self._horizon_ns = config.horizon_ns
        self._pending: deque[_Pending] = deque()
        self._last_move_up: bool | None = None
        self.score = PrequentialScore(config.metrics_window)

    def step(self, ts: int, mid_sum: Decimal, features: Features) -> Forecast:
        """Settle every forecast whose horizon ended by `ts`, then forecast at `ts`.

        `mid_sum` is best bid + best ask at `ts`.
        """
        pending, due = self._pending, ts - self._horizon_ns
        while pending and pending[0].ts <= due:
            self._settle(pending.popleft(), mid_sum)
        probabilities = self._model.predict_proba_one(features)
        # An untrained model may return {} (Hoeffding tree): no opinion is a coin flip.
        prob_up = probabilities.get(True, 0.5) if probabilities else 0.5
        prob_up = min(max(prob_up, 0.0), 1.0)
        score = self.score
        pending.append(
            _Pending(ts, mid_sum, features, prob_up, self._last_move_up,
                     features.get("imbalance_l1", 0.0) >= 0.0, score.base_rate())
        )
        prob_down = 1.0 - prob_up
        return Forecast(prob_up, prob_down, (prob_up - prob_down) * score.typical_move())

    def forget_pending(self) -> None:
        """Drop unsettled forecasts (after a break in the data): never learned, never scored."""
        self._pending.clear()

    def _settle(self, forecast: _Pending, mid_sum: Decimal) -> None:
        change = mid_sum - forecast.mid_sum
        if not change:
            self.score.add(_Settled(0.0, 0, 0, 0, 0, 0, 0, 0.0, 0.0))
            return
        up = change > 0
        base_rate = forecast.base_rate
        self.score.add(
            _Settled(
                abs_move=float(abs(change)) / 2.0,
                moved=1,
                model_hit=int((forecast.prob_up > 0.5) == up),
                last_move_hit=int(forecast.last_move_up is up),
                majority_hit=int((base_rate > 0.5) == up),
                imbalance_hit=int(forecast.imbalance_up == up),
                ups=int(up),
                model_log_loss=_log_loss(forecast.prob_up, up),
                baseline_log_loss=_log_loss(base_rate, up),
            )
        )
        self._model.learn_one(forecast.features, up)
        self._last_move_up = up


def _log_loss(prob_up: float, up: bool) -> float:
    p = prob_up if up else 1.0 - prob_up
    return -math.log(min(max(p, _LOG_LOSS_CLIP), 1.0))


class PredictSession:
    """One instrument: market events in, a `Prediction` per grid instant out.

    The clock (grid, breaks in the data, what a sample may see) is `GridSampler`'s.
    """

    __slots__ = ("_config", "_predictor", "_sampler", "_segment", "symbol", "venue")

    def __init__(
        self, venue: str, symbol: str, config: PredictorConfig, model: Any = None
    ) -> None:
        self.venue = venue
        self.symbol = symbol
        self._config = config
        self._sampler = GridSampler(
            venue, symbol, config.features, config.sample_interval_ns, config.max_gap_ns
        )
        self._segment = 0
        self._predictor = DirectionPredictor(config, model)

    @property
    def score(self) -> PrequentialScore:
        return self._predictor.score

    def on_event(self, event: Any) -> list[Prediction]:
        samples = self._sampler.on_event(event)
        if self._sampler.segment != self._segment:
            # A break in the data: forecasts across it are never learned nor scored.
            self._segment = self._sampler.segment
            self._predictor.forget_pending()
        return [self._predict(sample) for sample in samples]

    def close(self) -> list[Prediction]:
        return []

    def _predict(self, sample: Sample) -> Prediction:
        forecast = self._predictor.step(sample.ts, sample.mid_sum, sample.features)
        rolling = self._predictor.score.rolling()
        config = self._config
        return Prediction(
            venue=self.venue,
            symbol=self.symbol,
            ts=sample.ts,
            horizon_ns=config.horizon_ns,
            model=config.model,
            prob_up=forecast.prob_up,
            prob_down=forecast.prob_down,
            expected_move=forecast.expected_move,
            rolling_accuracy=None if rolling is None else rolling["accuracy"],
            # The stronger naive rule over the window: the bar the model has to clear.
            baseline_accuracy=None
            if rolling is None
            else max(rolling["last_move_accuracy"], rolling["majority_accuracy"],
                     rolling["imbalance_accuracy"]),
            rolling_log_loss=None if rolling is None else rolling["log_loss"],
        )
