"""The bandit strategy: fills inferred from the inventory, markout rewards, learning, audit."""

from __future__ import annotations

import pickle
import random

import pytest

from models.strategies import build_strategy
from models.strategies.bandit import Bandit
from models.strategies.base import MarketState


def state(mid: float, inventory: float) -> MarketState:
    return MarketState(mid=mid, best_bid=mid - 0.01, best_ask=mid + 0.01, inventory=inventory,
                       sigma=0.05, A=1.0, k=20.0, time_left=None)


def test_a_fill_is_rewarded_by_its_markout_net_of_fees():
    bandit = Bandit(gamma_steps=1, spread_steps=1, window_quotes=3, markout_quotes=2,
                    fee_bps=1.0)
    bid = bandit.quote(state(100.0, 0.0)).bids[0].price
    bandit.quote(state(100.0, 1.0))  # our bid was filled: +1 lot at `bid`
    bandit.quote(state(100.2, 1.0))
    assert bandit.history == []  # the markout has not matured
    bandit.quote(state(100.4, 1.0))  # markout due: mid 100.4; the window ends here too
    bandit.quote(state(100.4, 1.0))
    ((window, arm, reward),) = bandit.history
    expected = ((100.4 - bid) - 1e-4 * bid) / (bid * 1e-4)  # bps of notional per lot
    assert (window, arm) == (0, 0) and reward == pytest.approx(expected)


def simulate(bandit: Bandit, calls: int, seed: int) -> None:
    """A market where a fill is followed by an adverse move of 0.15: only wide quotes pay.

    Fills come at random (30% of calls, either side) at the strategy's own quotes.
    """
    rng = random.Random(seed)
    mid, inventory = 100.0, 0.0
    quotes = bandit.quote(state(mid, inventory))
    for _ in range(calls):
        if rng.random() < 0.3:
            if rng.random() < 0.5 and quotes.bids:
                inventory += bandit.order_size
                mid -= 0.15  # the buyer was picked off: the mid falls
            elif quotes.asks:
                inventory -= bandit.order_size
                mid += 0.15
        quotes = bandit.quote(state(mid, inventory))


@pytest.mark.parametrize("policy", [0, 1, 2])
def test_the_policy_learns_to_prefer_the_wider_arm(policy):
    bandit = Bandit(gamma_min=1.0, gamma_max=1.0, gamma_steps=1, spread_min=1.0,
                    spread_max=8.0, spread_steps=2, window_quotes=20, markout_quotes=5,
                    policy=policy, seed=3)
    narrow = bandit.quote(state(100.0, 0.0))
    half_spread = 100.0 - narrow.bids[0].price
    assert half_spread < 0.15 < 8 * half_spread  # arm 0 loses to the move, arm 1 beats it
    simulate(bandit, 8000, seed=5)
    late = [arm for _, arm, _ in bandit.history[-100:]]
    assert late.count(1) > 70, late
    rewards = {arm: [r for _, a, r in bandit.history if a == arm] for arm in (0, 1)}
    assert sum(rewards[1]) / len(rewards[1]) > 0 > sum(rewards[0]) / len(rewards[0])


def test_what_it_learned_survives_a_snapshot():
    bandit = Bandit(window_quotes=10, markout_quotes=3)
    simulate(bandit, 500, seed=1)
    restored = pickle.loads(pickle.dumps(bandit))
    assert restored.history == bandit.history and restored.current_arm == bandit.current_arm
    simulate(restored, 100, seed=2)
    assert len(restored.history) > len(bandit.history)


def test_the_registry_builds_it_and_rejects_bad_grids():
    built = build_strategy("bandit", {"gamma_steps": "2", "spread_steps": "2", "policy": "1"})
    assert len(built.arms) == 4
    with pytest.raises(ValueError, match="gamma_min must be <= gamma_max"):
        build_strategy("bandit", {"gamma_min": "2", "gamma_max": "1"})
    with pytest.raises(ValueError, match="policy"):
        build_strategy("bandit", {"policy": "3"})


def test_it_learns_inside_the_production_quote_session_in_a_backtest(shared_data):
    """The realistic backtest path (quote session, executor, paper venue) on 3 minutes of
    Binance spot BTCUSDT: the fills the venue makes reach the bandit through the inventory
    it is shown, and it settles rewards window after window."""
    from itertools import islice

    from connectors.replay.recordings import Recordings
    from quoteflow.runner import run_paper_trading
    from quoteflow.sessions import TradingOptions

    path = shared_data / "binance" / "spot" / "btcusdt_20240808.gz"
    params = {"window_quotes": "50", "markout_quotes": "20", "fee_bps": "10",
              "gamma_min": "0.01", "gamma_max": "0.1", "gamma_steps": "2",
              "spread_steps": "1"}
    outcome = run_paper_trading(islice(Recordings([path]).events(), 20_000),
                                TradingOptions("bandit", params))
    (session,) = outcome.registry.sessions.values()
    strategy = session.quoting.engine.strategy
    bandit = getattr(strategy, "inner", strategy)
    assert isinstance(bandit, Bandit)
    assert outcome.summary["fills"] > 0
    assert len(bandit.history) > 10
    assert {arm for _, arm, _ in bandit.history} == {0, 1}
    assert any(reward != 0 for _, _, reward in bandit.history)  # fills were seen and marked
    # Each intent names the arm in force when it was made: the choices are on the record.
    (intents,) = outcome.results.intents.values()
    assert {i.strategy for i in intents} == {"bandit#0", "bandit#1"}
    assert Bandit.name == "bandit"
