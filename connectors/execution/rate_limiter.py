"""Waiting for the venue's token bucket in asyncio, with a hold for a 429's Retry-After."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from models.rate_limit import TokenBucket

_NS_PER_S = 1_000_000_000


class _BucketLimiter:
    """What every limiter of one venue shares: its token bucket, its clock and a 429's hold."""

    __slots__ = ("_bucket", "_clock", "_held_until", "_on_grant")

    def __init__(
        self, bucket: TokenBucket, clock: Callable[[], int],
        on_grant: Callable[[int, float], None] | None,
    ) -> None:
        self._bucket = bucket
        self._clock = clock
        self._on_grant = on_grant
        self._held_until = 0

    @property
    def rate_per_s(self) -> float:
        return self._bucket.rate_per_s

    @property
    def capacity(self) -> float:
        return self._bucket.capacity

    def hold(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"hold needs seconds >= 0, not {seconds}")
        until = self._clock() + math.ceil(seconds * _NS_PER_S)
        self._held_until = max(self._held_until, until)


class AsyncRateLimiter(_BucketLimiter):
    """Every request of one venue passes `acquire(cost)` before it is sent.

    `delay_ns` is what the request must still wait once granted: always 0 here, where
    `acquire` sleeps until the bucket allows it (`SimulatedRateLimiter` differs).

    `on_grant(now_ns, cost)` sees each granted request (benchmarks and tests measure the
    rate with it). The clock is monotonic: a wall-clock step must not release a burst.
    """

    __slots__ = ("_sleep",)
    delay_ns = 0

    def __init__(
        self,
        bucket: TokenBucket,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_grant: Callable[[int, float], None] | None = None,
    ) -> None:
        super().__init__(bucket, clock, on_grant)
        self._sleep = sleep

    @classmethod
    def from_ccxt(cls, rate_limit_ms: float, capacity: float = 1.0, **kwargs) -> AsyncRateLimiter:
        """ccxt's own budget: one unit of cost per `rateLimit` ms, a bucket of `capacity`."""
        clock = kwargs.get("clock", time.monotonic_ns)
        return cls(TokenBucket.from_ccxt(rate_limit_ms, clock(), capacity), **kwargs)

    async def acquire(self, cost: float = 1.0) -> None:
        bucket = self._bucket
        while True:
            now = self._clock()
            if now < self._held_until:
                await self._sleep((self._held_until - now) / _NS_PER_S)
                continue
            # Single-threaded: nothing can take the tokens between the check and the take.
            if bucket.try_acquire(now, cost):
                if self._on_grant is not None:
                    self._on_grant(now, cost)
                return
            await self._sleep(bucket.wait_ns(now, cost) / _NS_PER_S)


class SimulatedRateLimiter(_BucketLimiter):
    """The venue's token bucket on a simulated clock (the paper venue's local clock).

    Nothing sleeps in a simulation: a request the bucket cannot grant yet takes its tokens in
    advance and leaves `delay_ns` later (the paper venue adds it to the request's latency),
    exactly when the same bucket would have let it go live. A 429's hold delays likewise.
    """

    __slots__ = ("delay_ns",)

    def __init__(
        self,
        bucket: TokenBucket,
        clock: Callable[[], int],
        *,
        on_grant: Callable[[int, float], None] | None = None,
    ) -> None:
        super().__init__(bucket, clock, on_grant)
        self.delay_ns = 0

    @classmethod
    def from_ccxt(
        cls, rate_limit_ms: float, clock: Callable[[], int], capacity: float = 1.0, **kwargs
    ) -> SimulatedRateLimiter:
        return cls(TokenBucket.from_ccxt(rate_limit_ms, clock(), capacity), clock, **kwargs)

    async def acquire(self, cost: float = 1.0) -> None:
        now = self._clock()
        start = self._held_until if self._held_until > now else now
        leaves = start + self._bucket.reserve(start, cost)
        self.delay_ns = leaves - now
        if self._on_grant is not None:
            self._on_grant(leaves, cost)
