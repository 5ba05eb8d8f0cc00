"""A River bandit choosing, window by window, among parameter arms of a quoting model.

Arms are (γ, spread multiplier) pairs of the infinite-horizon Avellaneda–Stoikov model
(`avellaneda-stoikov-infinite`): γ on a log grid from `gamma_min` to `gamma_max`, and the
multiplier, on a linear grid, scales each quote's distance from the reservation price. At
the start of each window of `window_quotes` quoting calls the policy (`river.bandit`: UCB,
EXP3 or Thompson sampling) pulls an arm, which quotes until the window ends.

The reward of a window is the markout-adjusted PnL of its fills net of fees: for each fill,
side × size × (mid `markout_quotes` calls later − fill price) − `fee_bps` of its notional,
in basis points of notional per lot so that every instrument's rewards are O(1). A window's
reward is passed to the policy once its last fill's markout has matured.

Learning needs only the strategy interface: the wrapper sees each `MarketState`, so a change
of `inventory` between two calls is a fill of ours, at the price this strategy last quoted
on that side (the venue grid moves it by less than a tick). So the same wrapper learns in the
Kafka quote flow (fills arrive on orders.events and move the inventory) and in backtests,
with no change to either. Windows are counted in quoting calls: the interface carries no
clock, and the engine quotes on market events, so a window is a stretch of market activity.

Its choices are kept (`history`: window, arm, reward) for the regret report, and each order
intent names the arm in force (`name` is "bandit#<arm>", arms listed by `arms`), so the
choices travel with the intents into the audit trail and the database. It is picklable, so
Bytewax recovery snapshots carry what it learned.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from river import bandit, preprocessing, proba

from models.strategies.avellaneda_stoikov_infinite import AvellanedaStoikovInfinite
from models.strategies.base import (
    DesiredQuotes,
    MarketState,
    QuoteLevel,
    lot_param,
    max_lots_param,
    param,
    require,
)

BPS = 1e-4
POLICIES = ("UCB", "EXP3", "Thompson")


def _grid(low: float, high: float, steps: int, log: bool) -> tuple[float, ...]:
    if steps == 1 or low == high:
        return (low,)
    if log:
        ratio = (high / low) ** (1.0 / (steps - 1))
        return tuple(low * ratio**i for i in range(steps))
    return tuple(low + (high - low) * i / (steps - 1) for i in range(steps))


class _Learner:
    """The mutable part: the policy, the current window, fills awaiting their markout."""

    def __init__(self, policy: Any, arms: int) -> None:
        self.policy = policy
        self.arms = list(range(arms))
        self.calls = 0
        self.window = -1
        self.arm = 0
        self.inventory: float | None = None
        self.last_bid: float | None = None
        self.last_ask: float | None = None
        # (due call, window, side, size, price) of each fill awaiting its markout.
        self.fills: deque[tuple[int, int, int, float, float]] = deque()
        self.open: dict[int, list] = {}  # window → [arm, reward so far, fills pending, ended]
        self.history: list[tuple[int, int, float]] = []


class _ArmName:
    """`Bandit.name` is "bandit"; an instance's name also says its current arm ("bandit#3").

    The quote engine stamps every order intent with its strategy's name, so the arm in
    force is on each intent: persisted with it, audited with it, plottable from the stored
    intents, with no change to the engine or the flow.
    """

    def __get__(self, instance: Bandit | None, owner: type) -> str:
        return "bandit" if instance is None else f"bandit#{instance.current_arm}"


@dataclass(frozen=True, slots=True)
class Bandit:
    name: ClassVar[str] = _ArmName()  # type: ignore[assignment]

    order_size: float = lot_param()
    gamma_min: float = param(0.01, "smallest risk aversion arm, 1/(price unit x lot)",
                             gt=0, le=1e6)
    gamma_max: float = param(1.0, "largest risk aversion arm", gt=0, le=1e6)
    gamma_steps: int = param(3, "risk aversion arms, on a log grid", ge=1, le=20)
    spread_min: float = param(1.0, "smallest spread multiplier arm", gt=0, le=100)
    spread_max: float = param(2.0, "largest spread multiplier arm", gt=0, le=100)
    spread_steps: int = param(3, "spread multiplier arms, on a linear grid", ge=1, le=20)
    omega: float = param(2.5, "discount rate 1/s of the inner model", gt=0, le=1e6)
    max_lots: float = max_lots_param()
    window_quotes: int = param(200, "quoting calls per window (one arm per window)",
                               ge=1, le=10**9)
    markout_quotes: int = param(50, "quoting calls after a fill at which it is marked",
                                ge=1, le=10**9)
    fee_bps: float = param(0.0, "maker fee in bps of notional (negative: a rebate)",
                           ge=-100, le=100)
    policy: int = param(0, "0 = UCB, 1 = EXP3, 2 = Thompson sampling", ge=0, le=2)
    seed: int = param(1, "random seed of the policy", ge=0, le=2**31)
    _arms: tuple[tuple[AvellanedaStoikovInfinite, float], ...] = field(
        init=False, repr=False, compare=False
    )
    _learner: _Learner = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require(self.gamma_min <= self.gamma_max, "gamma_min must be <= gamma_max")
        require(self.spread_min <= self.spread_max, "spread_min must be <= spread_max")
        arms = tuple(
            (
                AvellanedaStoikovInfinite(
                    order_size=self.order_size, gamma=gamma, omega=self.omega,
                    max_lots=self.max_lots,
                ),
                multiplier,
            )
            for gamma in _grid(self.gamma_min, self.gamma_max, self.gamma_steps, log=True)
            for multiplier in _grid(self.spread_min, self.spread_max, self.spread_steps, False)
        )
        object.__setattr__(self, "_arms", arms)
        object.__setattr__(self, "_learner", _Learner(self._policy(), len(arms)))

    def _policy(self) -> Any:
        seed = self.seed
        if self.policy == 0:
            # Rewards standardised online, so UCB's exploration bonus has a sensible scale.
            return bandit.UCB(
                delta=1.0, reward_scaler=preprocessing.TargetStandardScaler(None), seed=seed
            )
        if self.policy == 1:
            return bandit.Exp3(gamma=0.1, seed=seed)
        # Thompson sampling on "this window made money": a Beta posterior per arm.
        return bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=seed)

    @property
    def arms(self) -> list[dict[str, float]]:
        """Each arm's parameters, by arm index."""
        return [{"gamma": model.gamma, "spread_mult": mult} for model, mult in self._arms]

    @property
    def history(self) -> list[tuple[int, int, float]]:
        """(window, arm, reward) of every window whose reward is settled, in order."""
        return self._learner.history

    @property
    def current_arm(self) -> int:
        return self._learner.arm

    def quote(self, state: MarketState) -> DesiredQuotes:
        learner = self._learner
        learner.calls += 1
        self._record_fills(learner, state)
        self._settle(learner, state.mid)
        if learner.window < 0 or learner.calls - 1 >= (learner.window + 1) * self.window_quotes:
            self._next_window(learner)
        model, multiplier = self._arms[learner.arm]
        desired = model.quote(state)
        if multiplier != 1.0:
            r = desired.reservation_price
            desired = DesiredQuotes(
                tuple(QuoteLevel(r - multiplier * (r - q.price), q.size) for q in desired.bids),
                tuple(QuoteLevel(r + multiplier * (q.price - r), q.size) for q in desired.asks),
                r,
            )
        learner.last_bid = desired.bids[0].price if desired.bids else None
        learner.last_ask = desired.asks[0].price if desired.asks else None
        return desired

    def _record_fills(self, learner: _Learner, state: MarketState) -> None:
        previous, learner.inventory = learner.inventory, state.inventory
        if previous is None or state.inventory == previous:
            return
        change = state.inventory - previous
        side = 1 if change > 0 else -1
        quoted = learner.last_bid if side > 0 else learner.last_ask
        # A position change with no quote on that side is not ours to credit: marked at mid.
        price = quoted if quoted is not None else state.mid
        learner.fills.append(
            (learner.calls + self.markout_quotes, learner.window, side, abs(change), price)
        )
        learner.open[learner.window][2] += 1

    def _settle(self, learner: _Learner, mid: float) -> None:
        fills = learner.fills
        while fills and fills[0][0] <= learner.calls:
            _, window, side, size, price = fills.popleft()
            notional_per_lot = price * self.order_size * BPS
            markout = side * size * (mid - price) - self.fee_bps * BPS * price * size
            entry = learner.open[window]
            entry[1] += markout / notional_per_lot if notional_per_lot > 0 else 0.0
            entry[2] -= 1
        self._close_settled(learner)

    def _close_settled(self, learner: _Learner) -> None:
        for window in sorted(learner.open):
            arm, reward, pending, ended = learner.open[window]
            if not ended or pending:
                break  # windows settle in order: the policy sees rewards as they happened
            del learner.open[window]
            if self.policy == 1:
                learner.policy.update(arm, 0.5 + 0.5 * math.tanh(reward))  # EXP3: in [0, 1]
            elif self.policy == 2:
                learner.policy.update(arm, reward > 0)
            else:
                learner.policy.update(arm, reward)
            learner.history.append((window, arm, reward))

    def _next_window(self, learner: _Learner) -> None:
        if learner.window >= 0:
            learner.open[learner.window][3] = True
            self._close_settled(learner)
        learner.window += 1
        learner.arm = learner.policy.pull(learner.arms)
        learner.open[learner.window] = [learner.arm, 0.0, 0, False]
