"""Live exchanges through `ccxt.async_support`: any ccxt exchange id, sandbox where ccxt has one.

- Rate limiting: ccxt computes every request's endpoint cost (its weight) and awaits
  `exchange.throttle(cost)`; that hook is pointed at our `AsyncRateLimiter`, a token bucket
  refilling one unit per `exchange.rateLimit` ms. So every request ccxt sends — market loading,
  orders, queries, its own retries — is paced by one bucket, with ccxt's own weights.
- Exact numbers: the exchange parses numbers as strings (`exchange.number = str`), so prices
  and sizes reach `Decimal` without a float in between; orders go out as decimal strings.
- Orders are addressed by our client order id (ccxt's unified `clientOrderId` param).
- Every new order also carries `order_params`: the exchange's own self-trade prevention mode
  where it has one (`connectors.venues.order_params`, e.g. Binance `selfTradePreventionMode`).
- Balances are wallet balances (`ccxt_structures.wallet_totals`: a futures account's ccxt
  `total` includes unrealized PnL) and derivatives are positions (`fetch_positions`, signed
  contracts per symbol), as a futures account keeps them: `holds_positions`.
- A 429's `Retry-After` header is put on the exception (`retry_after_s`) for the retry policy.
- There is no push channel here (ccxt.pro's `watch_orders` would be one): `poll_events` is
  empty and the executor sees changes through reconciliation's queries.
- Amending is off unless the caller says the exchange's `editOrder` modifies the order in
  place and keeps its client id (Binance USD-M's PUT /fapi/v1/order does; Binance spot's
  cancel-replace makes a new order and does not).
- The credentials go into the ccxt instance and nowhere else: never logged, never audited.
- The exchange-side dead-man's switch (`deadman.py`), where the venue has one, is armed at
  connect, re-armed by a task while the venue is open, and disarmed by `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
import msgspec

from connectors.execution import ccxt_structures, deadman
from connectors.execution.rate_limiter import AsyncRateLimiter
from connectors.execution.venue import NewOrder
from connectors.secrets import ExchangeCredentials
from models.events import Fill, OrderEvent, Side
from models.execution.orders import VenueOrder
from models.execution.plan import UNIT_COSTS, RequestCosts

T = TypeVar("T")


class CcxtVenue:
    def __init__(
        self,
        exchange: ccxt_async.Exchange,
        limiter: AsyncRateLimiter,
        *,
        costs: RequestCosts = UNIT_COSTS,
        supports_amend: bool = False,
        order_params: Mapping[str, str] | None = None,
    ) -> None:
        self.exchange = exchange
        self.order_params = dict(order_params or {})
        self.id = exchange.id
        self.costs = costs
        self.supports_amend = supports_amend
        self.holds_positions = True
        self._limiter = limiter
        exchange.number = str
        exchange.enableRateLimit = True  # so ccxt calls throttle(cost) before each request
        exchange.throttle = limiter.acquire
        # Exchange order id → our client id, for trades that do not echo the client id.
        self._client_ids: dict[str, str] = {}
        self.deadman: deadman.DeadManSwitch | None = None
        self._deadman_task: asyncio.Task | None = None

    @classmethod
    async def connect(
        cls,
        exchange_id: str,
        credentials: ExchangeCredentials,
        *,
        sandbox: bool = False,
        config: Mapping[str, Any] | None = None,
        supports_amend: bool = False,
        capacity: float = 1.0,
        on_grant: Callable[[int, float], None] | None = None,
        deadman_timeout_s: float = 0.0,
        symbols: Sequence[str] = (),
        order_params: Mapping[str, str] | None = None,
    ) -> CcxtVenue:
        """Build the exchange, switch to its sandbox if asked, and load its markets; arm the
        venue's dead-man's switch for `symbols` when `deadman_timeout_s` > 0 and it has one."""
        try:
            exchange_class = getattr(ccxt_async, exchange_id)
        except AttributeError:
            raise ValueError(f"ccxt has no exchange {exchange_id!r}") from None
        settings = {**credentials.to_ccxt_config(), **(config or {})}
        exchange = exchange_class(settings)
        if sandbox:
            exchange.set_sandbox_mode(True)  # raises NotSupported where ccxt has no sandbox
        limiter = AsyncRateLimiter.from_ccxt(exchange.rateLimit, capacity, on_grant=on_grant)
        venue = cls(exchange, limiter, supports_amend=supports_amend, order_params=order_params)
        try:
            await venue._call(exchange.load_markets)
            await venue._arm_deadman(deadman_timeout_s, symbols)
        except BaseException:
            await exchange.close()
            raise
        return venue

    async def _arm_deadman(self, timeout_s: float, symbols: Sequence[str]) -> None:
        switch = deadman.DeadManSwitch.for_exchange(self.exchange, timeout_s, symbols)
        if switch is None:
            return
        await self._call(switch.arm)
        self.deadman = switch
        self._deadman_task = asyncio.create_task(
            switch.keep_alive(), name=f"{self.id} dead-man's switch")

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        try:
            return await request()
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as error:
            retry_after = (self.exchange.last_response_headers or {}).get("Retry-After")
            if retry_after is not None:
                # An HTTP date instead of seconds: the policy's own backoff applies.
                with contextlib.suppress(ValueError):
                    error.retry_after_s = float(retry_after)
            raise

    def _order(self, order: dict, client_order_id: str | None = None) -> VenueOrder:
        seen = ccxt_structures.venue_order(order)
        if client_order_id is not None and seen.client_order_id != client_order_id:
            # Some venues answer a cancel with the cancel request's own client id.
            seen = msgspec.structs.replace(seen, client_order_id=client_order_id)
        if seen.exchange_order_id is not None:
            self._client_ids[seen.exchange_order_id] = seen.client_order_id
        return seen

    async def create_order(self, order: NewOrder) -> VenueOrder:
        params = {
            **self.order_params, "clientOrderId": order.client_order_id,
            "postOnly": order.post_only,
        }
        created = await self._call(lambda: self.exchange.create_order(
            order.symbol, "limit", order.side, str(order.amount), str(order.price), params
        ))
        return self._order(created, order.client_order_id)

    async def cancel_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        cancelled = await self._call(lambda: self.exchange.cancel_order(
            client_order_id, symbol, {"clientOrderId": client_order_id}
        ))
        return self._order(cancelled, client_order_id)

    async def amend_order(
        self, client_order_id: str, symbol: str, side: Side, amount: Decimal, price: Decimal,
        trigger_exchange_ts: int | None = None,
    ) -> VenueOrder:
        amended = await self._call(lambda: self.exchange.edit_order(
            client_order_id, symbol, "limit", side, str(amount), str(price),
            {"clientOrderId": client_order_id},
        ))
        return self._order(amended, client_order_id)

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        try:
            found = await self._call(lambda: self.exchange.fetch_order(
                client_order_id, symbol, {"clientOrderId": client_order_id}
            ))
        except ccxt.OrderNotFound:
            return None
        return self._order(found, client_order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        orders = await self._call(lambda: self.exchange.fetch_open_orders(symbol))
        return [self._order(order) for order in orders]

    async def fetch_balance(self) -> dict[str, Decimal]:
        balance = await self._call(self.exchange.fetch_balance)
        return ccxt_structures.wallet_totals(balance)

    async def fetch_positions(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        positions = await self._call(lambda: self.exchange.fetch_positions(list(symbols)))
        return ccxt_structures.signed_contracts(positions)

    async def fetch_my_trades(self, symbol: str, since_ns: int | None = None) -> list[Fill]:
        since_ms = None if since_ns is None else since_ns // ccxt_structures.NS_PER_MS
        trades = await self._call(lambda: self.exchange.fetch_my_trades(symbol, since_ms))
        quote = self.exchange.market(symbol)["quote"]
        return [
            ccxt_structures.fill(trade, self.id, self._client_id(trade), quote)
            for trade in trades
        ]

    def _client_id(self, trade: dict) -> str:
        order_id = str(trade.get("order"))
        return trade.get("clientOrderId") or self._client_ids.get(order_id, order_id)

    async def poll_events(self) -> list[OrderEvent | Fill]:
        return []

    def hold(self, seconds: float) -> None:
        self._limiter.hold(seconds)

    async def close(self, *, disarm: bool = True) -> None:
        if self.deadman is not None:
            await deadman.stop(self.deadman, self._deadman_task, disarm=disarm)
        await self.exchange.close()
