"""A venue wrapper that injects the faults real venues and networks produce, for tests.

Seeded, so a failing run can be replayed. Per request it may fail *before* the request
reaches the venue (connect timeout, 429 with Retry-After, 5xx, DDoS protection, a reject of a
new order) or *after* the venue processed it (the answer lost to a timeout or a dropped
connection: the order may exist though the caller saw an error). Pushed events may be
duplicated, shuffled within a batch, or held back to a later batch (out of order). Nothing
is ever lost for good: a held-back event comes with the next poll.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import ccxt

from connectors.execution.venue import NewOrder, Venue
from models.events import Fill, OrderEvent, Side
from models.execution.orders import VenueOrder

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probability of each fault per request (or per pushed event for the last three)."""

    timeout_before: float = 0.02
    lost_answer: float = 0.03  # processed, then a timeout or a dropped connection
    rate_limited: float = 0.02  # HTTP 429
    unavailable: float = 0.02  # HTTP 5xx
    ddos: float = 0.01
    reject: float = 0.02  # a create refused by the venue (InvalidOrder / InsufficientFunds)
    duplicate_event: float = 0.05
    delay_event: float = 0.05
    shuffle_batch: float = 0.2
    retry_after_s: float = 0.001


class FaultyVenue:
    def __init__(self, inner: Venue, seed: int, rates: FaultRates = FaultRates()) -> None:
        self.inner = inner
        self.id = inner.id
        self.costs = inner.costs
        self.supports_amend = inner.supports_amend
        self.holds_positions = inner.holds_positions
        self.rates = rates
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._held: list[OrderEvent | Fill] = []

    def _roll(self, probability: float) -> bool:
        return probability > 0 and self._random.random() < probability

    def _before(self, request: str, creates: bool = False) -> None:
        rates = self.rates
        if self._roll(rates.timeout_before):
            self.counts["timeout_before"] += 1
            raise ccxt.RequestTimeout(f"injected: {request} timed out before reaching the venue")
        if self._roll(rates.rate_limited):
            self.counts["rate_limited"] += 1
            error = ccxt.RateLimitExceeded(f"injected: HTTP 429 on {request}")
            error.retry_after_s = rates.retry_after_s
            raise error
        if self._roll(rates.unavailable):
            self.counts["unavailable"] += 1
            raise ccxt.ExchangeNotAvailable(f"injected: HTTP 503 on {request}")
        if self._roll(rates.ddos):
            self.counts["ddos"] += 1
            raise ccxt.DDoSProtection(f"injected: HTTP 418 on {request}")
        if creates and self._roll(rates.reject):
            self.counts["reject"] += 1
            if self._random.random() < 0.5:
                raise ccxt.InsufficientFunds(f"injected: {request} refused for funds")
            raise ccxt.InvalidOrder(f"injected: {request} refused")

    async def _request(
        self, request: str, call: Callable[[], Awaitable[T]], creates: bool = False
    ) -> T:
        self._before(request, creates)
        result = await call()
        if self._roll(self.rates.lost_answer):
            self.counts["lost_answer"] += 1
            if self._random.random() < 0.5:
                raise ccxt.RequestTimeout(f"injected: {request} processed, answer timed out")
            raise ccxt.NetworkError(f"injected: connection reset after {request} was sent")
        return result

    async def create_order(self, order: NewOrder) -> VenueOrder:
        return await self._request("create", lambda: self.inner.create_order(order), True)

    async def cancel_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        return await self._request(
            "cancel", lambda: self.inner.cancel_order(client_order_id, symbol)
        )

    async def amend_order(
        self, client_order_id: str, symbol: str, side: Side, amount: Decimal, price: Decimal,
        trigger_exchange_ts: int | None = None,
    ) -> VenueOrder:
        return await self._request("amend", lambda: self.inner.amend_order(
            client_order_id, symbol, side, amount, price, trigger_exchange_ts
        ))

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        return await self._request(
            "fetch_order", lambda: self.inner.fetch_order(client_order_id, symbol)
        )

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return await self._request(
            "fetch_open_orders", lambda: self.inner.fetch_open_orders(symbol)
        )

    async def fetch_balance(self) -> dict[str, Decimal]:
        return await self._request("fetch_balance", self.inner.fetch_balance)

    async def fetch_positions(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        return await self._request(
            "fetch_positions", lambda: self.inner.fetch_positions(symbols)
        )

    async def fetch_my_trades(self, symbol: str, since_ns: int | None = None) -> list[Fill]:
        return await self._request(
            "fetch_my_trades", lambda: self.inner.fetch_my_trades(symbol, since_ns)
        )

    async def poll_events(self) -> list[OrderEvent | Fill]:
        held, self._held = self._held, []
        batch: list[OrderEvent | Fill] = []
        for event in await self.inner.poll_events():
            if self._roll(self.rates.delay_event):
                self.counts["delayed_event"] += 1
                self._held.append(event)
                continue
            batch.append(event)
            if self._roll(self.rates.duplicate_event):
                self.counts["duplicated_event"] += 1
                batch.append(event)
        if len(batch) > 1 and self._roll(self.rates.shuffle_batch):
            self.counts["shuffled_batch"] += 1
            self._random.shuffle(batch)
        # Held-back events come after newer ones: out of order across batches.
        return batch + held

    def flush(self) -> list[OrderEvent | Fill]:
        """Events still held back (a test's last drain)."""
        held, self._held = self._held, []
        return held

    def hold(self, seconds: float) -> None:
        self.inner.hold(seconds)

    async def close(self, *, disarm: bool = True) -> None:
        await self.inner.close(disarm=disarm)
