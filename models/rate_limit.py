"""A token bucket on integer nanoseconds, with the caller's clock.

Implemented as the generic cell rate algorithm: instead of a token count the bucket keeps
the time at which it will be full again (`_full_at`), so it needs no refill step, no float
accumulator that drifts over a long run, and no allocation per request. The guarantee the
executor relies on: over any interval of length T, the cost granted is at most
`capacity + rate · T` (for requests that cost no more than the capacity).

ccxt's own limiter is the model: `rateLimit` is the milliseconds one unit of cost takes to
refill, and each endpoint has a `cost` (its weight). A request costing more than the
capacity waits for a full bucket and then leaves it in debt, as ccxt's leaky bucket does,
so heavy endpoints are never starved.
"""

from __future__ import annotations

import math

_NS_PER_S = 1_000_000_000


class TokenBucket:
    __slots__ = ("_burst_ns", "_full_at", "_ns_per_unit", "capacity")

    def __init__(self, rate_per_s: float, capacity: float, now_ns: int) -> None:
        if not (math.isfinite(rate_per_s) and rate_per_s > 0):
            raise ValueError(f"rate must be positive units per second, not {rate_per_s}")
        if not (math.isfinite(capacity) and capacity > 0):
            raise ValueError(f"capacity must be positive, not {capacity}")
        # Rounded up: the bucket may refill a hair slower than asked, never faster.
        self._ns_per_unit = math.ceil(_NS_PER_S / rate_per_s)
        self._burst_ns = math.floor(capacity * self._ns_per_unit)
        self.capacity = capacity
        self._full_at = now_ns  # starts full

    @classmethod
    def from_ccxt(cls, rate_limit_ms: float, now_ns: int, capacity: float = 1.0) -> TokenBucket:
        """The bucket ccxt would use for an exchange: one unit per `rateLimit` milliseconds."""
        return cls(1000.0 / rate_limit_ms, capacity, now_ns)

    @property
    def rate_per_s(self) -> float:
        return _NS_PER_S / self._ns_per_unit

    def wait_ns(self, now_ns: int, cost: float = 1.0) -> int:
        """Nanoseconds until a request of `cost` would be granted (0: now)."""
        return self._admission(now_ns, cost)[0]

    def try_acquire(self, now_ns: int, cost: float = 1.0) -> bool:
        """Take `cost` units if they are there; False (and nothing taken) if not."""
        wait, full_at = self._admission(now_ns, cost)
        if wait:
            return False
        self._full_at = full_at
        return True

    def reserve(self, now_ns: int, cost: float = 1.0) -> int:
        """Take `cost` units at once, in debt if need be; returns the nanoseconds the request
        must still wait before it may leave (a simulated venue delays it by that much)."""
        wait, full_at = self._admission(now_ns, cost)
        self._full_at = full_at
        return wait

    def _admission(self, now_ns: int, cost: float) -> tuple[int, int]:
        """(wait before `cost` is granted, when the bucket is full again once it is taken now)."""
        if not (math.isfinite(cost) and cost >= 0):
            raise ValueError(f"cost must be a non-negative number, not {cost}")
        cost_ns = math.ceil(cost * self._ns_per_unit)
        full_at = self._full_at if self._full_at > now_ns else now_ns
        # Over the capacity: wait for a full bucket, then go into debt (ccxt's behaviour).
        needed = cost_ns if cost_ns < self._burst_ns else self._burst_ns
        return max(0, full_at + needed - self._burst_ns - now_ns), full_at + cost_ns
