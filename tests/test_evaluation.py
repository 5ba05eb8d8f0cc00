"""Block-bootstrap standard errors (models.evaluation) and the OFI definition's doctests."""

from __future__ import annotations

import doctest

import numpy as np

import models.evaluation
import models.features
from models.evaluation import block_length, mean_and_se


def test_doctests():
    for module in (models.evaluation, models.features):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_overlapping_forecasts_widen_the_error_bar():
    """Scores of forecasts over a 10-step horizon made every step share 9 steps of path.

    The block bootstrap (blocks >= the horizon) sees that; resampling single samples
    (i.i.d.) understates the error about √10-fold.
    """
    rng = np.random.default_rng(7)
    steps = rng.normal(size=5010)
    moves = np.convolve(steps, np.ones(10), mode="valid")[:5000]  # 10-step sums, overlapping
    hits = (moves > 0).astype(float)
    _, se_block = mean_and_se(hits, block=block_length(10, len(hits)) * 3)
    _, se_iid = mean_and_se(hits, block=1)
    assert se_block > 2 * se_iid


def test_unscored_samples_keep_their_place_and_do_not_count():
    values = np.array([1.0, np.nan, 0.0, np.nan] * 100)
    mean, se = mean_and_se(values, block=4)
    assert mean == 0.5 and se == 0.0  # every block of 4 holds one hit and one miss
