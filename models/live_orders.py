"""Our own view of the orders we have working on one instrument.

Updated from what we sent and from the venue's order events, so the desired state can be
diffed without asking the venue. An order whose cancel is in flight leaves this view at
once (it no longer counts as quoting), but a fill that still arrives for it is applied to
the position by whoever consumes the Fill.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from models.events import OrderEvent, Side
from models.order_diff import LiveOrder

_TERMINAL = frozenset({"fill", "cancel", "reject"})


class LiveOrders:
    __slots__ = ("_next_id", "_orders", "_prefix")

    def __init__(self, prefix: str):
        self._prefix = prefix
        self._next_id = 0
        self._orders: dict[str, LiveOrder] = {}

    def new_client_order_id(self) -> str:
        """Deterministic ids (prefix + counter): a replay sends the same ids, so retries dedupe."""
        self._next_id += 1
        return f"{self._prefix}{self._next_id}"

    def placed(self, client_order_id: str, side: Side, price: Decimal, size: Decimal) -> None:
        self._orders[client_order_id] = LiveOrder(client_order_id, side, price, size)

    def cancelling(self, client_order_id: str) -> None:
        self._orders.pop(client_order_id, None)

    def on_event(self, event: OrderEvent) -> None:
        order = self._orders.get(event.client_order_id)
        if order is None:
            return
        if event.kind in _TERMINAL:
            del self._orders[event.client_order_id]
        elif event.kind == "partial_fill":
            self._orders[event.client_order_id] = LiveOrder(
                order.client_order_id, order.side, order.price, event.remaining
            )

    def __iter__(self):
        return iter(self._orders.values())

    def __len__(self) -> int:
        return len(self._orders)

    def ids(self) -> Iterable[str]:
        return list(self._orders)
