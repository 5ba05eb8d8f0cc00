"""Walk-forward scoring: labels are learned only after their horizon, tasks, baselines."""

from __future__ import annotations

import random
from decimal import Decimal as D

import numpy as np
import pytest

from models.features import Sample
from models.walk_forward import (
    THREE_CLASSES,
    TWO_CLASSES,
    Labelled,
    RuleBaseline,
    build_forecaster,
    evaluate,
    walk,
)

MS = 1_000_000
STEP = 100 * MS
HORIZON = 1_000 * MS


def synthetic(n: int, seed: int, flat_every: int = 0) -> list[Sample]:
    """A mid that moves one tick per horizon in the direction of the imbalance seen before."""
    rng = random.Random(seed)
    mid_sum, samples, imbalance = D(200), [], 0.5
    for i in range(n):
        if i % 10 == 0:
            if i:
                flat = flat_every and (i // 10) % flat_every == 0
                mid_sum += 0 if flat else (D(1) if imbalance > 0 else D(-1))
            imbalance = rng.uniform(-1, 1)
        x = {
            "imbalance_l1": imbalance, "microprice_depth_bps": rng.gauss(0, 1),
            "ofi_l1_1000ms": rng.gauss(0, 1), "noise": rng.gauss(0, 1),
        }
        samples.append(Sample(i * STEP, mid_sum, x, 0))
    return samples


class Spy:
    """A forecaster that records, in order, each forecast asked and each label learned."""

    def __init__(self):
        self.log: list[tuple[str, int]] = []

    def proba(self, x):
        self.log.append(("ask", x["ts"]))
        return {-1: 0.5, 1: 0.5}

    def learn(self, x, label):
        self.log.append(("learn", x["ts"]))


def test_labels_are_learned_only_after_their_horizon():
    samples = synthetic(300, seed=1)
    samples = [s._replace(features={**s.features, "ts": s.ts}) for s in samples]
    spy = Spy()
    walk(Labelled(samples, HORIZON), {"spy": spy}, TWO_CLASSES, score=True)
    asked = [ts for kind, ts in spy.log if kind == "ask"]
    assert len(set(asked)) == len(asked) > 250  # one forecast per labelled sample
    learned = 0
    for position, (kind, label_ts) in enumerate(spy.log):
        if kind != "learn":
            continue
        learned += 1
        assert ("ask", label_ts) in spy.log[:position]  # forecast first, learn later
        # The clock at learning time: the last forecast made is still before t + horizon,
        # and the next one is at or after it.
        before = [ts for k, ts in spy.log[:position] if k == "ask"]
        after = [ts for k, ts in spy.log[position:] if k == "ask"]
        assert before[-1] < label_ts + HORIZON
        assert not after or after[0] >= label_ts + HORIZON
    assert learned > 250


def test_two_class_leaves_flats_out_three_class_keeps_them():
    stream = Labelled(synthetic(400, seed=2, flat_every=3), HORIZON)
    labels = [label for label in stream.labels if label is not None]
    assert 0 in labels
    two = walk(stream, {"m": build_forecaster("majority", TWO_CLASSES)}, TWO_CLASSES, score=True)
    three = walk(
        stream, {"m": build_forecaster("majority", THREE_CLASSES)}, THREE_CLASSES, score=True
    )
    scored_two = ~np.isnan(two["m"][0])
    scored_three = ~np.isnan(three["m"][0])
    assert scored_two.sum() == sum(1 for label in labels if label != 0)
    assert scored_three.sum() == len(labels)
    assert stream.labels[-1] is None  # the last horizon runs past the end: no label


def test_the_imbalance_rule_learns_its_calibration_and_the_model_learns_the_signal():
    train = Labelled(synthetic(2000, seed=3), HORIZON)
    test = Labelled(synthetic(1000, seed=4), HORIZON)
    scores, _ = evaluate([train], test, ["imbalance", "majority", "logreg"], TWO_CLASSES)
    accuracy = {name: np.nanmean(hits) for name, (hits, _) in scores.items()}
    assert accuracy["imbalance"] > 0.95
    assert accuracy["logreg"] > 0.9
    assert accuracy["majority"] < 0.7


def test_rule_baseline_probabilities_are_laplace_smoothed_frequencies():
    rule = RuleBaseline(lambda x: 1 if x["s"] > 0 else -1, TWO_CLASSES)
    assert rule.proba({"s": 1}) == {-1: 0.5, 1: 0.5}
    for _ in range(8):
        rule.learn({"s": 1}, 1)
    assert rule.proba({"s": 1})[1] == pytest.approx(9 / 10)
    assert rule.proba({"s": -1}) == {-1: 0.5, 1: 0.5}


def test_unknown_models_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build_forecaster("nope", TWO_CLASSES)
    with pytest.raises(ValueError, match="suffix"):
        build_forecaster("logreg+x", TWO_CLASSES)


def test_recalibration_learns_from_out_of_sample_forecasts_only():
    """`+cal` wraps a model; it still learns the signal and its probabilities stay proper."""
    train = Labelled(synthetic(2000, seed=5), HORIZON)
    test = Labelled(synthetic(1000, seed=6), HORIZON)
    scores, fitted = evaluate([train], test, ["logreg+cal"], TWO_CLASSES)
    hits, losses = scores["logreg+cal"]
    assert np.nanmean(hits) > 0.9 and np.nanmean(losses) < 0.5
    probs = fitted["logreg+cal"].proba(test.features[0])
    assert set(probs) == {-1, 1} and sum(probs.values()) == pytest.approx(1.0)
