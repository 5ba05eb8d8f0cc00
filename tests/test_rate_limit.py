"""The token bucket never grants more than capacity + rate · T over any interval."""

from __future__ import annotations

from fractions import Fraction

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.rate_limit import TokenBucket

S = 1_000_000_000


def test_starts_full_then_refills_at_the_rate():
    bucket = TokenBucket(rate_per_s=10, capacity=3, now_ns=0)
    assert [bucket.try_acquire(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_ns(0) == S // 10
    assert not bucket.try_acquire(S // 10 - 1)
    assert bucket.try_acquire(S // 10)
    assert bucket.wait_ns(10 * S) == 0


def test_a_refused_request_takes_nothing():
    bucket = TokenBucket(rate_per_s=1, capacity=2, now_ns=0)
    assert bucket.try_acquire(0, cost=2)
    for _ in range(5):
        assert not bucket.try_acquire(S // 2)
    assert bucket.try_acquire(S)


def test_weights_cost_more():
    bucket = TokenBucket(rate_per_s=20, capacity=10, now_ns=0)
    assert bucket.try_acquire(0, cost=5)
    assert bucket.try_acquire(0, cost=5)
    assert not bucket.try_acquire(0, cost=0.5)
    assert bucket.wait_ns(0, cost=5) == S // 4


def test_over_capacity_waits_for_a_full_bucket_then_goes_into_debt():
    bucket = TokenBucket(rate_per_s=1, capacity=1, now_ns=0)
    assert bucket.try_acquire(0, cost=1)
    assert bucket.wait_ns(0, cost=5) == S
    assert bucket.try_acquire(S, cost=5)
    assert bucket.wait_ns(S, cost=1) == 5 * S


def test_from_ccxt_uses_the_exchange_rate_limit():
    exchange = ccxt.binance()
    bucket = TokenBucket.from_ccxt(exchange.rateLimit, now_ns=0)
    assert bucket.rate_per_s == pytest.approx(1000 / exchange.rateLimit)
    assert bucket.try_acquire(0)
    assert bucket.wait_ns(0) == exchange.rateLimit * 1_000_000


@pytest.mark.parametrize(
    ("rate", "capacity", "message"),
    [(0, 1, "rate"), (-1, 1, "rate"), (float("nan"), 1, "rate"), (1, 0, "capacity"),
     (1, float("inf"), "capacity")],
)
def test_bad_parameters_are_refused(rate, capacity, message):
    with pytest.raises(ValueError, match=message):
        TokenBucket(rate, capacity, now_ns=0)


@pytest.mark.parametrize("cost", [-1, float("nan"), float("inf")])
def test_bad_cost_is_refused(cost):
    bucket = TokenBucket(1, 1, now_ns=0)
    with pytest.raises(ValueError, match="cost"):
        bucket.try_acquire(0, cost)


@settings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1, 3, 7.5, 20, 1000 / 50, 1000 / 3]),
    capacity=st.integers(1, 20),
    steps=st.lists(
        st.tuples(st.integers(0, S // 5), st.integers(1, 4)), min_size=1, max_size=1500
    ),
)
def test_never_exceeds_its_rate(rate, capacity, steps):
    """Greedy callers at random times: every window's grants stay within the bound."""
    bucket = TokenBucket(rate, capacity, now_ns=0)
    now = 0
    granted: list[tuple[int, int]] = []
    for gap, cost in steps:
        now += gap
        cost = min(cost, capacity)
        while bucket.try_acquire(now, cost):
            granted.append((now, cost))
    rate_exact = Fraction(rate)
    # Every window that starts and ends at a grant is the tightest one: check them all
    # with a sliding sum (grants are in time order).
    for i in range(len(granted)):
        total = 0
        for j in range(i, len(granted)):
            total += granted[j][1]
            span = granted[j][0] - granted[i][0]
            assert total <= capacity + rate_exact * span / S
