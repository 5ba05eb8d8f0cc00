"""Timeouts and retries with exponential backoff, for network errors only.

Only `ccxt.NetworkError` and its family (timeouts, 5xx, 429, DDoS protection, dropped
connections) are retried: the request may not have been processed, so trying again can help.
Every other ccxt error is the venue's answer (`InvalidOrder`, `InsufficientFunds`, ...), and
asking again would get the same answer or, worse, act twice.

A request that timed out or lost its connection may have been processed anyway. Callers
whose request is not idempotent pass `before_retry`, which looks at the venue first (the
executor asks for the client order id) and returns the result if the request did land.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import ccxt

from connectors.execution import eager

T = TypeVar("T")

# 429 and its kin: the whole venue should slow down, not only the request that got it.
_THROTTLED = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    base_delay_s: float = 0.05
    factor: float = 2.0
    max_delay_s: float = 5.0
    timeout_s: float = 10.0  # of one attempt

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {self.attempts}")
        if min(self.base_delay_s, self.max_delay_s, self.timeout_s) < 0 or self.factor < 1:
            raise ValueError("delays and timeout must be >= 0 and the factor >= 1")

    def delay_s(self, retry: int, error: BaseException) -> float:
        """Before retry number `retry` (0-based): the venue's Retry-After when it gave one."""
        after = retry_after_s(error)
        if after is not None:
            return after
        return min(self.max_delay_s, self.base_delay_s * self.factor**retry)


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, ccxt.NetworkError)


def retry_after_s(error: BaseException) -> float | None:
    """Seconds the venue asked us to wait (HTTP Retry-After), set on 429s by the adapters."""
    return getattr(error, "retry_after_s", None)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_error: Callable[[int, BaseException, float], None] | None = None,
    on_rate_limited: Callable[[float], None] | None = None,
    before_retry: Callable[[], Awaitable[T | None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`call()` with a timeout per attempt; raises the last error when every attempt failed.

    `on_error(attempt, error, delay)` sees each retryable failure before the wait;
    `on_rate_limited(delay)` is told of each 429 so the whole venue can hold back.
    """
    retry = 0
    loop = asyncio.get_running_loop()
    while True:
        try:
            # The attempt's deadline is set before it starts, but its timer only once it has
            # to wait: an answer given without waiting cannot have timed out, and most paper
            # and simulated requests answer so. asyncio.timeout, not wait_for: no extra task
            # and loop turn per request.
            deadline = loop.time() + policy.timeout_s
            answered, answer = eager.start(call())
            if answered:
                return answer
            async with asyncio.timeout_at(deadline):
                return await answer
        except TimeoutError:
            error: BaseException = ccxt.RequestTimeout(f"no answer within {policy.timeout_s} s")
        except ccxt.NetworkError as network_error:
            error = network_error
        if retry + 1 >= policy.attempts:
            raise error
        delay = policy.delay_s(retry, error)
        if on_error is not None:
            on_error(retry + 1, error, delay)
        if on_rate_limited is not None and isinstance(error, _THROTTLED):
            on_rate_limited(delay)
        await sleep(delay)
        retry += 1
        if before_retry is not None:
            landed = await before_retry()
            if landed is not None:
                return landed
