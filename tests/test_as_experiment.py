"""The paper's section 4 simulation against its table and its qualitative claims."""

from __future__ import annotations

import math

import pytest

from models.as_experiment import STATISTICS, run_experiment

PATHS = 4000


@pytest.fixture(scope="module")
def results():
    return {gamma: run_experiment(gamma, PATHS, seed=2008) for gamma in (0.01, 0.1, 0.5)}


def test_gamma_0_1_matches_the_papers_table(results):
    """Avellaneda & Stoikov (2008), table for γ = 0.1 (1000 paths in the paper).

    Means within 5% (the paper's own sampling error on the symmetric profit is ±0.4, and
    replications land about 2 above its 62.94), standard deviations within 15%, and mean
    final inventories within a few of their standard errors of the paper's.
    """
    inventory, symmetric = results[0.1]["inventory"], results[0.1]["symmetric"]
    assert inventory["spread_mean"] == pytest.approx(1.49, abs=0.005)
    assert inventory["profit_mean"] == pytest.approx(62.94, rel=0.05)
    assert inventory["profit_std"] == pytest.approx(5.89, rel=0.15)
    assert inventory["final_q_mean"] == pytest.approx(0.10, abs=0.35)
    assert inventory["final_q_std"] == pytest.approx(2.80, rel=0.15)
    assert symmetric["profit_mean"] == pytest.approx(67.21, rel=0.05)
    assert symmetric["profit_std"] == pytest.approx(13.43, rel=0.15)
    assert symmetric["final_q_mean"] == pytest.approx(-0.018, abs=0.8)
    assert symmetric["final_q_std"] == pytest.approx(8.66, rel=0.15)


@pytest.mark.parametrize("gamma", [0.01, 0.1, 0.5])
def test_inventory_strategy_has_less_risk_than_the_symmetric_one(results, gamma):
    inventory, symmetric = results[gamma]["inventory"], results[gamma]["symmetric"]
    assert inventory["profit_std"] < symmetric["profit_std"]
    assert inventory["final_q_std"] < 0.7 * symmetric["final_q_std"]
    assert inventory["spread_mean"] == symmetric["spread_mean"]


def test_risk_aversion_trades_profit_for_lower_variance(results):
    stds = [results[g]["inventory"]["profit_std"] for g in (0.01, 0.1, 0.5)]
    means = [results[g]["inventory"]["profit_mean"] for g in (0.01, 0.1, 0.5)]
    assert stds == sorted(stds, reverse=True)
    assert means == sorted(means, reverse=True)


def test_spread_mean_is_the_time_average_of_the_as_spread():
    # Steps at t = 0, dt, ..., T−dt: mean of γσ²(T−t) is γσ²(T+dt)/2.
    result = run_experiment(0.1, paths=10, seed=0)
    expected = 0.1 * 4 * 1.005 / 2 + 20 * math.log(16 / 15)
    assert result["inventory"]["spread_mean"] == pytest.approx(expected, rel=1e-12)
    assert set(result["inventory"]) == set(result["symmetric"]) == set(STATISTICS)


def test_deterministic_per_seed():
    assert run_experiment(0.1, 200, seed=1) == run_experiment(0.1, 200, seed=1)
    assert run_experiment(0.1, 200, seed=1) != run_experiment(0.1, 200, seed=2)


def test_inventory_strategy_works_off_a_starting_position():
    result = run_experiment(0.1, 2000, seed=3, q0=5)
    assert abs(result["inventory"]["final_q_mean"]) < 1.0
    assert result["symmetric"]["final_q_mean"] == pytest.approx(5.0, abs=0.6)


@pytest.mark.parametrize(
    "kwargs",
    [{"gamma": 0}, {"paths": 1}, {"k": 0}, {"A": -1}, {"sigma": -1}, {"dt": 0}, {"T": 0.001}],
)
def test_rejects_bad_parameters(kwargs):
    arguments = {"gamma": 0.1, "paths": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        run_experiment(**arguments)
