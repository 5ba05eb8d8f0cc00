"""The paper venue behind the async venue interface.

`PaperVenue` runs on the market-data clock, so whoever feeds the market (a replay, the
simulator, the md topics) also calls `on_market_event`: that advances the venue, and what
the venue reports (order events, fills) waits here until the executor polls for it. Each
request passes the venue's rate limiter with the configured endpoint cost, as a live
venue's would.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt

from connectors.execution import ccxt_structures
from connectors.execution.rate_limiter import AsyncRateLimiter
from connectors.execution.venue import NewOrder
from connectors.paper_venue import PaperVenue
from models.book_view import BookView
from models.events import AnyMarketEvent, Fill, OrderEvent, Side
from models.execution.orders import VenueOrder
from models.execution.plan import UNIT_COSTS, RequestCosts


class PaperVenueAdapter:
    supports_amend = True  # edit_order keeps the order and its client id

    def __init__(
        self, venue: PaperVenue, venue_id: str, limiter: AsyncRateLimiter,
        costs: RequestCosts = UNIT_COSTS,
    ) -> None:
        self.id = venue_id
        self.costs = costs
        self.venue = venue
        self._limiter = limiter
        self._events: list[OrderEvent | Fill] = []

    def on_market_event(
        self, event: AnyMarketEvent, book: BookView, *, book_changed: bool = True
    ) -> None:
        self._events.extend(self.venue.on_market_event(event, book, book_changed=book_changed))

    async def poll_events(self) -> list[OrderEvent | Fill]:
        events, self._events = self._events, []
        return events

    async def create_order(self, order: NewOrder) -> VenueOrder:
        await self._limiter.acquire(self.costs.create)
        created = self.venue.create_order(
            order.symbol, "limit", order.side, order.amount, order.price,
            {"clientOrderId": order.client_order_id, "postOnly": order.post_only},
        )
        return ccxt_structures.venue_order(created)

    async def cancel_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        await self._limiter.acquire(self.costs.cancel)
        self.venue.request_cancel(client_order_id, symbol, {"clientOrderId": client_order_id})
        return None  # the cancel travels to the venue; its event says when it is done

    async def amend_order(
        self, client_order_id: str, symbol: str, side: Side, amount: Decimal, price: Decimal
    ) -> VenueOrder:
        await self._limiter.acquire(self.costs.amend)
        amended = self.venue.edit_order(
            client_order_id, symbol, "limit", side, amount, price,
            {"clientOrderId": client_order_id},
        )
        return ccxt_structures.venue_order(amended)

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

    async def fetch_my_trades(self, symbol: str, since_ns: int | None = None) -> list[Fill]:
        await self._limiter.acquire(self.costs.fetch_my_trades)
        since_ms = None if since_ns is None else since_ns // ccxt_structures.NS_PER_MS
        return [
            ccxt_structures.fill(trade, self.id, trade["clientOrderId"], trade["fee"]["currency"])
            for trade in self.venue.fetch_my_trades(symbol)
            if since_ms is None or trade["timestamp"] >= since_ms
        ]

    def hold(self, seconds: float) -> None:
        self._limiter.hold(seconds)

    async def close(self) -> None:
        return None
