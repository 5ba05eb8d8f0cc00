"""The paper venue behind the async venue interface.

`PaperVenue` runs on the exchange clock, so whoever feeds the market (a backtest, the
simulator, the md topics) drives it through `connectors.paper.market.PaperMarket`, which
hands what our side hears (order events, fills) to `push`; it waits here until the executor
polls for it. Each request passes the venue's rate limiter with the configured endpoint
cost, as a live venue's would: on a simulated clock (`SimulatedRateLimiter`) a request the
bucket holds back leaves later instead of blocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import ccxt

from connectors.execution import ccxt_structures
from connectors.execution.ccxt_structures import NS_PER_MS
from connectors.execution.rate_limiter import AsyncRateLimiter, SimulatedRateLimiter
from connectors.execution.venue import NewOrder
from connectors.paper.orders import OPEN, PaperOrder
from connectors.paper.venue import PaperVenue
from models.events import Fill, OrderEvent, Side
from models.execution.orders import CCXT_STATUS, PENDING, VenueOrder
from models.execution.plan import UNIT_COSTS, RequestCosts


class PaperVenueAdapter:
    supports_amend = True  # edit_order keeps the order and its client id
    holds_positions = False  # every fill is a cash flow (connectors/paper/balances.py)

    def __init__(
        self, venue: PaperVenue, venue_id: str,
        limiter: AsyncRateLimiter | SimulatedRateLimiter, costs: RequestCosts = UNIT_COSTS,
    ) -> None:
        self.id = venue_id
        self.costs = costs
        self.venue = venue
        self._limiter = limiter
        self._events: list[OrderEvent | Fill] = []

    def push(self, events: list[OrderEvent | Fill]) -> None:
        """What the venue reported and our side has now heard."""
        if events:
            self._events.extend(events)

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    async def poll_events(self) -> list[OrderEvent | Fill]:
        events, self._events = self._events, []
        return events

    async def _throttle(self, cost: float) -> dict:
        await self._limiter.acquire(cost)
        delay = self._limiter.delay_ns
        return {"delayNs": delay} if delay else {}

    async def create_order(self, order: NewOrder) -> VenueOrder:
        params = await self._throttle(self.costs.create)
        created = self.venue.place(
            order.symbol, "limit", order.side, order.amount, order.price,
            {"clientOrderId": order.client_order_id, "postOnly": order.post_only,
             "triggerExchangeTs": order.trigger_exchange_ts, **params},
        )
        return venue_order(created)

    async def cancel_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        params = await self._throttle(self.costs.cancel)
        self.venue.request_cancel(
            client_order_id, symbol, {"clientOrderId": client_order_id, **params}
        )
        return None  # the cancel travels to the venue; its event says when it is done

    async def amend_order(
        self, client_order_id: str, symbol: str, side: Side, amount: Decimal, price: Decimal,
        trigger_exchange_ts: int | None = None,
    ) -> VenueOrder:
        params = await self._throttle(self.costs.amend)
        amended = self.venue.amend(
            client_order_id, symbol, "limit", side, amount, price,
            {"clientOrderId": client_order_id, "triggerExchangeTs": trigger_exchange_ts,
             **params},
        )
        return venue_order(amended)

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        await self._limiter.acquire(self.costs.fetch_order)
        try:
            return ccxt_structures.venue_order(self.venue.fetch_order(client_order_id, symbol))
        except ccxt.OrderNotFound:
            return None

    async def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        await self._limiter.acquire(self.costs.fetch_open_orders)
        return [ccxt_structures.venue_order(o) for o in self.venue.fetch_open_orders(symbol)]

    async def fetch_balance(self) -> dict[str, Decimal]:
        await self._limiter.acquire(self.costs.fetch_balance)
        return dict(self.venue.fetch_balance()["total"])

    async def fetch_positions(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        raise ccxt.NotSupported("the paper venue books derivatives as cash flows, no positions")

    async def fetch_my_trades(self, symbol: str, since_ns: int | None = None) -> list[Fill]:
        await self._limiter.acquire(self.costs.fetch_my_trades)
        # The venue's own fills: what ccxt's trade structures would give back, field for field.
        return self.venue.my_fills(symbol, 0 if since_ns is None else since_ns)

    def hold(self, seconds: float) -> None:
        self._limiter.hold(seconds)

    async def close(self, *, disarm: bool = True) -> None:
        return None


def venue_order(order: PaperOrder) -> VenueOrder:
    """`ccxt_structures.venue_order(order.to_ccxt())`, without building ccxt's structure
    (its date string and trade list cost more than the answer to a create or an amend)."""
    status = order.status
    if status == OPEN and order.queue is None:
        status = PENDING  # still travelling to the matching engine
    else:
        status = CCXT_STATUS.get(status or OPEN, PENDING)
    return VenueOrder(
        client_order_id=order.client_order_id or "",
        exchange_order_id=order.id,
        symbol=order.instrument.symbol,
        side=order.side,
        price=order.price,
        amount=order.amount,
        filled=order.filled,
        status=status,
        ts=(order.last_update_ns // NS_PER_MS or order.timestamp_ns // NS_PER_MS)
        * NS_PER_MS,
    )
