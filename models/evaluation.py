"""Scores of probabilistic forecasts and their block-bootstrap standard errors.

Forecasts made every sample over a horizon of h samples overlap: consecutive outcomes share
most of their path, so the scores are autocorrelated and the i.i.d. standard error
(σ/√n) is too small. The moving-block bootstrap resamples contiguous blocks at least one
horizon long (circularly, so every sample is equally likely to be drawn), which keeps that
dependence inside each block.

Unscored samples (a flat horizon in a two-class task, a sample whose horizon ran past the
end) are NaN: they keep their place on the time grid, so blocks stay blocks of time, and
each resample's statistic is the mean of the scored samples it drew (a ratio estimator).
Pure numpy; no I/O.
"""

from __future__ import annotations

import math

import numpy as np

_CLIP = 1e-15


def log_loss(prob_of_outcome: np.ndarray) -> np.ndarray:
    """−ln p of the outcome that happened, clipped away from 0.

    >>> log_loss(np.array([1.0, 0.5])).round(4).tolist()
    [-0.0, 0.6931]
    """
    return -np.log(np.clip(prob_of_outcome, _CLIP, 1.0))


def block_length(horizon_steps: int, n: int, minimum: int = 10) -> int:
    """Blocks at least one horizon long, and at least n^(1/3) (the usual rate) and `minimum`.

    >>> block_length(10, 3400)
    17
    >>> block_length(50, 3400)
    50
    >>> block_length(1, 100)
    10
    """
    return max(horizon_steps, math.ceil(n ** (1 / 3)) + 1, minimum)


def bootstrap_means(
    values: np.ndarray, block: int, n_boot: int = 500, seed: int = 0
) -> np.ndarray:
    """Means of each row of `values` (k × n, NaN = unscored) over `n_boot` block resamples.

    Every row is resampled with the same blocks, so differences between rows (a model and a
    baseline scored on the same samples) keep their pairing. Returns n_boot × k.

    >>> x = np.array([[1.0, 0.0, np.nan, 1.0]])
    >>> bootstrap_means(x, block=4, n_boot=3).round(3).tolist()  # one block = the whole run
    [[0.667], [0.667], [0.667]]
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    n = values.shape[1]
    if n == 0:
        return np.full((n_boot, values.shape[0]), np.nan)
    block = min(max(block, 1), n)
    rng = np.random.default_rng(seed)
    blocks = math.ceil(n / block)
    starts = rng.integers(0, n, size=(n_boot, blocks))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n] % n
    scored = ~np.isnan(values)
    filled = np.where(scored, values, 0.0)
    sums = filled[:, index].sum(axis=2)  # k × n_boot
    counts = scored[:, index].sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).T


def mean_and_se(values: np.ndarray, block: int, n_boot: int = 500, seed: int = 0) -> tuple:
    """The mean of the scored samples of one series and its block-bootstrap standard error.

    >>> rng = np.random.default_rng(1)
    >>> noise = rng.normal(size=2000)
    >>> m, se = mean_and_se(noise, block=20)
    >>> abs(m) < 3 * se and 0.01 < se < 0.04  # about 1/√2000 = 0.022
    True

    Strongly dependent data: each value repeated 20 times. The bootstrap with blocks of 20
    sees ~100 independent draws, not 2000.

    >>> sticky = np.repeat(rng.normal(size=100), 20)
    >>> _, se_sticky = mean_and_se(sticky, block=20)
    >>> 0.07 < se_sticky < 0.14  # about 1/√100 = 0.1
    True
    """
    values = np.asarray(values, dtype=float)
    mean = float(np.nanmean(values)) if np.any(~np.isnan(values)) else math.nan
    boots = bootstrap_means(values[None, :], block, n_boot, seed)[:, 0]
    return mean, float(np.nanstd(boots, ddof=1))


def compare(
    scores: dict[str, np.ndarray], block: int, n_boot: int = 500, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Mean and standard error of each named score series, resampled with the same blocks.

    Also `se_diff_<name>`: the standard error of (this series − `name`) for every other
    series, which is what a claim "A beats B" needs (it accounts for their correlation).

    >>> a = np.array([1.0, 1.0, 0.0, 1.0] * 50)
    >>> b = np.array([1.0, 0.0, 0.0, 1.0] * 50)
    >>> out = compare({"a": a, "b": b}, block=4)
    >>> out["a"]["mean"], out["b"]["mean"]
    (0.75, 0.5)
    >>> out["a"]["se_diff_b"] == 0.0  # the difference is the same in every block
    True
    """
    names = list(scores)
    matrix = np.vstack([np.asarray(scores[name], dtype=float) for name in names])
    boots = bootstrap_means(matrix, block, n_boot, seed)
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        row = matrix[i]
        scored = ~np.isnan(row)
        stats = {
            "mean": float(row[scored].mean()) if scored.any() else math.nan,
            "se": _se(boots[:, i]),
            "n": int(scored.sum()),
        }
        for j, other in enumerate(names):
            if j != i:
                stats[f"se_diff_{other}"] = _se(boots[:, i] - boots[:, j])
        out[name] = stats
    return out


def _se(draws: np.ndarray) -> float:
    draws = draws[~np.isnan(draws)]
    if len(draws) < 2:
        return math.nan
    se = float(np.std(draws, ddof=1))
    return 0.0 if se < 1e-12 else round(se, 12)
