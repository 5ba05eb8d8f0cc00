"""Waiting for the venue's token bucket in asyncio, with a hold for a 429's Retry-After."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from models.rate_limit import TokenBucket

_NS_PER_S = 1_000_000_000


class AsyncRateLimiter:
    """Every request of one venue passes `acquire(cost)` before it is sent.

    `on_grant(now_ns, cost)` sees each granted request (benchmarks and tests measure the
    rate with it). The clock is monotonic: a wall-clock step must not release a burst.
    """

    __slots__ = ("_bucket", "_clock", "_held_until", "_on_grant", "_sleep")

    def __init__(
        self,
        bucket: TokenBucket,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_grant: Callable[[int, float], None] | None = None,
    ) -> None:
        self._bucket = bucket
        self._clock = clock
        self._sleep = sleep
        self._on_grant = on_grant
        self._held_until = 0

    @classmethod
    def from_ccxt(cls, rate_limit_ms: float, capacity: float = 1.0, **kwargs) -> AsyncRateLimiter:
        """ccxt's own budget: one unit of cost per `rateLimit` ms, a bucket of `capacity`."""
        clock = kwargs.get("clock", time.monotonic_ns)
        return cls(TokenBucket.from_ccxt(rate_limit_ms, clock(), capacity), **kwargs)

    @property
    def rate_per_s(self) -> float:
        return self._bucket.rate_per_s

    @property
    def capacity(self) -> float:
        return self._bucket.capacity

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

    def hold(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"hold needs seconds >= 0, not {seconds}")
        until = self._clock() + math.ceil(seconds * _NS_PER_S)
        self._held_until = max(self._held_until, until)
