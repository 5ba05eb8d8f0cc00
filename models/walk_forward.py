"""Prequential (walk-forward) evaluation of direction forecasts on sampled market data.

The samples come from `models.features.GridSampler` (a feature vector per 100 ms of event
time, computed from nothing after its instant). For a horizon of h and a sample at t:

- the label is the sign of mid(t + h) − mid(t), compared exactly: −1, 0 (flat) or +1;
- the **two-class** task leaves flats out (neither learned nor scored); the **three-class**
  task keeps them as a class of their own;
- every forecaster — River models and baselines alike — is asked for its probabilities at t
  and learns the label only once t + h has passed (at the first sample at or after t + h),
  so no forecast is ever scored on something its forecaster has learned.

A run can start with a **training stream** (another recording): everything learns on it
first, nothing is scored there; then the **evaluation stream** is walked the same way and
scored. The evaluation stream is never seen before each forecast's own horizon has passed.

Baselines (`RuleBaseline`): each turns a signal known at t into probabilities with the
running, Laplace-smoothed frequencies of each label given that signal, learned like any
model. So they are calibrated, and the three-class variants may forecast "flat".
- `majority`: no signal — the running class frequencies;
- `momentum`: the sign of the mid's move over the last horizon;
- `imbalance`: the sign of the touch's size imbalance;
- `microprice`: the sign of the depth-weighted microprice − mid (the touch microprice's sign
  is the touch imbalance's sign by construction, so the depth-weighted one is the distinct
  rule);
- `ofi`: the sign of the touch's order-flow imbalance over the last second.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from river import (
    compose,
    feature_extraction,
    forest,
    linear_model,
    multiclass,
    optim,
    preprocessing,
    tree,
)

from models.features import Features, Sample

TWO_CLASSES = (-1, 1)
THREE_CLASSES = (-1, 0, 1)
TASKS = {"two_class": TWO_CLASSES, "three_class": THREE_CLASSES}
_PROB_FLOOR = 1e-4  # no forecaster says "impossible": one surprise would cost log-loss ∞


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


class RuleBaseline:
    """P(label | signal) from running counts (Laplace-smoothed); argmax is its forecast."""

    __slots__ = ("_classes", "_counts", "signal")

    def __init__(self, signal: Callable[[Features], int], classes: Sequence[int]) -> None:
        self.signal = signal
        self._classes = tuple(classes)
        self._counts: dict[int, dict[int, float]] = {}

    def proba(self, x: Features) -> dict[int, float]:
        counts = self._counts.get(self.signal(x))
        if counts is None:
            return dict.fromkeys(self._classes, 1.0 / len(self._classes))
        total = sum(counts.values())
        return {c: counts[c] / total for c in self._classes}

    def learn(self, x: Features, label: int) -> None:
        counts = self._counts.setdefault(self.signal(x), dict.fromkeys(self._classes, 1.0))
        counts[label] += 1.0


BASELINES: dict[str, Callable[[Features], int]] = {
    "majority": lambda x: 0,
    "momentum": lambda x: _sign(x["momentum"]),
    "imbalance": lambda x: _sign(x["imbalance_l1"]),
    "microprice": lambda x: _sign(x["microprice_depth_bps"]),
    "ofi": lambda x: _sign(x["ofi_l1_1000ms"]),
}


class RiverForecaster:
    """A River classifier behind the forecaster interface, over the task's classes.

    Binary River models (logistic regression) see "up" as True; multiclass ones the labels.
    Probabilities are floored and renormalised: an unseen class is unlikely, not impossible.
    """

    __slots__ = ("_binary", "_classes", "model")

    def __init__(self, model: Any, classes: Sequence[int], binary: bool) -> None:
        self.model = model
        self._classes = tuple(classes)
        self._binary = binary

    def proba(self, x: Features) -> dict[int, float]:
        raw = self.model.predict_proba_one(x) or {}
        if self._binary:
            up = raw.get(True, 0.5)
            raw = {1: up, -1: 1.0 - up}
        probs = {c: max(float(raw.get(c, 0.0)), _PROB_FLOOR) for c in self._classes}
        total = sum(probs.values())
        return {c: p / total for c, p in probs.items()}

    def learn(self, x: Features, label: int) -> None:
        self.model.learn_one(x, label == 1 if self._binary else label)


class Calibrated:
    """Online recalibration: a softmax regression on the base model's log-probabilities.

    The calibrator learns each label from the probabilities the base model gave *before*
    learning it, i.e. from out-of-sample forecasts (Platt scaling, prequentially).
    """

    __slots__ = ("_base", "_calibrator", "_classes")

    def __init__(self, base: RiverForecaster, classes: Sequence[int]) -> None:
        self._base = base
        self._classes = tuple(classes)
        self._calibrator = RiverForecaster(
            linear_model.SoftmaxRegression(optimizer=optim.SGD(0.01))
            if len(classes) > 2
            else linear_model.LogisticRegression(optimizer=optim.SGD(0.02)),
            classes,
            binary=len(classes) == 2,
        )

    def _inputs(self, x: Features) -> dict[str, float]:
        return {f"lp{c}": math.log(p) for c, p in self._base.proba(x).items()}

    def proba(self, x: Features) -> dict[int, float]:
        return self._calibrator.proba(self._inputs(x))

    def learn(self, x: Features, label: int) -> None:
        self._calibrator.learn(self._inputs(x), label)
        self._base.learn(x, label)


def _scaled_logreg(lr: float, interactions: bool) -> Any:
    steps: list[Any] = [preprocessing.StandardScaler()]
    if interactions:
        steps.append(feature_extraction.PolynomialExtender(degree=2, interaction_only=True))
        # Products of standardised features are not standardised: scale again.
        steps.append(preprocessing.StandardScaler())
    steps.append(linear_model.LogisticRegression(optimizer=optim.SGD(lr)))
    return compose.Pipeline(*steps)


def _river(name: str, classes: Sequence[int]) -> RiverForecaster:
    binary = len(classes) == 2
    if name in ("logreg", "logreg_interactions"):
        interactions = name == "logreg_interactions"
        if binary:
            return RiverForecaster(_scaled_logreg(0.003, interactions), classes, True)
        model = multiclass.OneVsRestClassifier(_scaled_logreg(0.003, interactions))
        return RiverForecaster(model, classes, False)
    if name == "hoeffding_adaptive":
        model = tree.HoeffdingAdaptiveTreeClassifier(grace_period=100, seed=1)
    elif name == "arf":
        model = forest.ARFClassifier(n_models=10, seed=1)
    elif name == "amf":
        model = forest.AMFClassifier(n_estimators=10, step=1.0, seed=1)
    else:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    return RiverForecaster(model, classes, False)


MODEL_NAMES = ("logreg", "logreg_interactions", "hoeffding_adaptive", "arf", "amf")


def build_forecaster(name: str, classes: Sequence[int]) -> Any:
    """A model by name (`MODEL_NAMES`, optionally suffixed `+cal`) or a baseline by name."""
    if name in BASELINES:
        return RuleBaseline(BASELINES[name], classes)
    base_name, _, suffix = name.partition("+")
    if suffix not in ("", "cal"):
        raise ValueError(f"unknown model suffix {suffix!r} in {name!r}; only +cal")
    forecaster = _river(base_name, classes)
    return Calibrated(forecaster, classes) if suffix else forecaster


class Labelled:
    """One stream's samples with their labels and momentum signal for one horizon.

    `labels[i]` is the sign of the mid's move over [t_i, t_i + h], or None when the stream
    has no sample at t_i + h in the same segment (the end, or a break in the data).
    `due[i]` is the index of the first sample at or after t_i + h: the moment it is known.
    """

    __slots__ = ("due", "features", "labels", "ts")

    def __init__(self, samples: Sequence[Sample], horizon_ns: int) -> None:
        at = {(s.ts, s.segment): i for i, s in enumerate(samples)}
        self.ts = np.array([s.ts for s in samples], dtype=np.int64)
        self.labels: list[int | None] = []
        self.features: list[Features] = []
        for s in samples:
            later = at.get((s.ts + horizon_ns, s.segment))
            change = samples[later].mid_sum - s.mid_sum if later is not None else None
            self.labels.append(None if change is None else _sign(change))
            earlier = at.get((s.ts - horizon_ns, s.segment))
            momentum = 0 if earlier is None else _sign(s.mid_sum - samples[earlier].mid_sum)
            self.features.append({**s.features, "momentum": float(momentum)})
        self.due = np.searchsorted(self.ts, self.ts + horizon_ns, side="left")


def walk(
    stream: Labelled,
    forecasters: dict[str, Any],
    classes: Sequence[int],
    *,
    score: bool,
) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Forecast at each sample, learn each label when due; (hit, log-loss) per sample.

    Unscored samples are NaN: no label, or a flat in a two-class task. With `score` False
    the forecasters only learn (a training stream).
    """
    n = len(stream.ts)
    keep = set(classes)
    hits = {name: np.full(n, np.nan) for name in forecasters} if score else None
    losses = {name: np.full(n, np.nan) for name in forecasters} if score else None
    pending: deque[int] = deque()
    labels, features, due = stream.labels, stream.features, stream.due
    for i in range(n):
        while pending and due[pending[0]] <= i:
            j = pending.popleft()
            label = labels[j]
            for forecaster in forecasters.values():
                forecaster.learn(features[j], label)
        label = labels[i]
        if label is None or label not in keep:
            continue  # never learned, so never pending
        if score:
            for name, forecaster in forecasters.items():
                probs = forecaster.proba(features[i])
                best = max(probs, key=probs.__getitem__)
                hits[name][i] = float(best == label)
                losses[name][i] = -math.log(max(probs[label], 1e-15))
        pending.append(i)
    if not score:
        return None
    return {name: (hits[name], losses[name]) for name in forecasters}


def evaluate(
    train: Iterable[Labelled],
    test: Labelled,
    names: Sequence[str],
    classes: Sequence[int],
    pretrained: dict[str, Any] | None = None,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Train every named forecaster on `train` (unscored), then walk `test` scoring it.

    `pretrained` (from an earlier call's second result) skips the training streams; the
    forecasters are copied, so one training serves several test streams.
    """
    if pretrained is None:
        pretrained = {name: build_forecaster(name, classes) for name in names}
        for stream in train:
            walk(stream, pretrained, classes, score=False)
    forecasters = {name: copy.deepcopy(pretrained[name]) for name in names}
    scores = walk(test, forecasters, classes, score=True)
    assert scores is not None
    return scores, pretrained
