"""Our orders and the state machine that the venue's (possibly repeated, reordered) events drive.

Venues and transports repeat and reorder order events: a retried response, a redelivered
message, a REST poll racing a stream. The tracker makes every event either advance an order
or be ignored, so what it reports as news is each transition once, in a valid order:

    PENDING ──ack──► OPEN ──partial_fill (filled grows)──► OPEN
       │               ├──fill──► FILLED
       │               └──cancel──► CANCELED
       └──reject──► REJECTED        (fill / cancel also end a PENDING order directly)

Terminal states absorb everything after them; a partial fill that does not raise `filled`
is old news; an `ack` after any progress is ignored. A venue's refusal of a cancel or amend
leaves the order as it is, but its price and amount are taken from the event: the venue's view
of the order wins over the one we assumed when we sent the request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal

import msgspec

from models.events import OrderEvent, OrderEventKind, Side

ZERO = Decimal(0)

PENDING, OPEN, FILLED, CANCELED, REJECTED = "pending", "open", "filled", "canceled", "rejected"
TERMINAL = frozenset({FILLED, CANCELED, REJECTED})
_TERMINAL_EVENT: dict[str, OrderEventKind] = {
    FILLED: "fill", CANCELED: "cancel", REJECTED: "reject",
}

# ccxt's order statuses, as the venues report them, onto ours.
CCXT_STATUS = {
    "open": OPEN, "closed": FILLED, "canceled": CANCELED, "cancelled": CANCELED,
    "expired": CANCELED, "rejected": REJECTED,
}


# Reasons of a venue refusing a request about an order (not the order itself): the paper
# venue's, and the ones the live adapter gives a refused cancel or amend.
CANCEL_REJECTED, AMEND_REJECTED = "CANCEL_REJECTED", "AMEND_REJECTED"


def is_request_reject(reason: str | None) -> bool:
    return reason is not None and reason.startswith((CANCEL_REJECTED, AMEND_REJECTED))


class VenueOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order as the venue reports it (a response or a query), in exact numbers."""

    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: Side
    price: Decimal | None
    amount: Decimal
    filled: Decimal
    status: str  # one of PENDING, OPEN, FILLED, CANCELED, REJECTED
    ts: int  # ns

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


class TrackedOrder:
    """One of our orders. Quacks like `models.order_diff.LiveOrder` for diffs and risk checks."""

    __slots__ = (
        "amend_from",
        "amount",
        "cancel_requested",
        "client_order_id",
        "exchange_order_id",
        "filled",
        "instrument_key",
        "price",
        "sent_ts",
        "side",
        "status",
        "strategy",
        "symbol",
        "venue",
    )

    def __init__(
        self, *, client_order_id: str, venue: str, symbol: str, side: Side, price: Decimal,
        amount: Decimal, sent_ts: int, status: str = PENDING, filled: Decimal = ZERO,
        exchange_order_id: str | None = None, strategy: str | None = None,
    ) -> None:
        self.client_order_id = client_order_id
        self.exchange_order_id = exchange_order_id
        self.venue = venue
        self.symbol = symbol
        self.instrument_key = f"{venue}:{symbol}"
        self.side = side
        self.price = price
        self.amount = amount
        self.filled = filled
        self.status = status
        self.sent_ts = sent_ts
        self.cancel_requested = False
        # The strategy whose intents it answers; None for an order found at the venue (adopted).
        self.strategy = strategy
        # (price, amount) before an amend we sent and the venue has not confirmed yet.
        self.amend_from: tuple[Decimal, Decimal] | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    def __repr__(self) -> str:
        return (
            f"TrackedOrder({self.client_order_id} {self.instrument_key} {self.side} "
            f"{self.filled}/{self.amount}@{self.price} {self.status})"
        )


class OrderTracker:
    """Every order of ours that is not finished, by client id and by instrument.

    Finished orders are remembered (up to `finished_capacity`) only to recognise late
    events for them.
    """

    __slots__ = ("_by_instrument", "_finished", "_finished_capacity", "_orders")

    def __init__(self, finished_capacity: int = 100_000) -> None:
        self._orders: dict[str, TrackedOrder] = {}
        self._by_instrument: dict[str, dict[str, TrackedOrder]] = {}
        self._finished: OrderedDict[str, str] = OrderedDict()
        self._finished_capacity = finished_capacity

    # -- what we sent ------------------------------------------------------------------------

    def add(self, order: TrackedOrder) -> None:
        if order.client_order_id in self._orders:
            raise ValueError(f"order {order.client_order_id} is tracked already")
        self._orders[order.client_order_id] = order
        self._by_instrument.setdefault(order.instrument_key, {})[order.client_order_id] = order

    def get(self, client_order_id: str) -> TrackedOrder | None:
        return self._orders.get(client_order_id)

    def finished_status(self, client_order_id: str) -> str | None:
        return self._finished.get(client_order_id)

    # -- what the venue says -----------------------------------------------------------------

    def apply(self, event: OrderEvent) -> bool:
        """Apply one order event; True when it is news (a state transition to publish)."""
        order = self._orders.get(event.client_order_id)
        if order is None:
            return False  # finished already, or not ours to know: the caller audits it
        if event.exchange_order_id is not None:
            order.exchange_order_id = event.exchange_order_id
        kind = event.kind
        if kind == "ack":
            if order.status != PENDING:
                return False
            order.status = OPEN
            return True
        if kind == "partial_fill":
            if event.filled <= order.filled:
                return False
            order.filled = event.filled
            order.status = OPEN
            return True
        if kind == "amend":
            confirms = order.amend_from is not None
            order.amend_from = None
            if not confirms and (event.price, event.size) == (order.price, order.amount):
                return False
            order.price, order.amount = event.price, event.size
            order.filled = max(order.filled, event.filled)
            return True
        if kind == "fill":
            self._finish(order, FILLED, max(order.filled, event.filled))
            return True
        if kind == "cancel":
            self._finish(order, CANCELED, max(order.filled, event.filled))
            return True
        # A reject: of a cancel or amend of the order, else of the order itself.
        if order.status == PENDING and not is_request_reject(event.reason):
            self._finish(order, REJECTED, order.filled)
            return True
        if event.price is not None:
            order.price, order.amount = event.price, event.size
        order.cancel_requested = False
        order.amend_from = None
        return False

    def apply_venue_order(self, seen: VenueOrder) -> OrderEventKind | None:
        """The state a response or query reported; the kind of event it amounts to, if any.

        One query can jump several steps (an order we never saw acknowledged is filled):
        the most advanced one is reported, since it implies the others.
        """
        order = self._orders.get(seen.client_order_id)
        if order is None:
            return None
        if seen.exchange_order_id is not None:
            order.exchange_order_id = seen.exchange_order_id
        status = seen.status
        if status in TERMINAL:
            self._finish(order, status, max(order.filled, seen.filled))
            return _TERMINAL_EVENT[status]
        kind: OrderEventKind | None = None
        if order.status == PENDING and status == OPEN:
            order.status = OPEN
            kind = "ack"
        if (
            order.amend_from is None and seen.price is not None
            and (seen.price, seen.amount) != (order.price, order.amount)
        ):
            order.price, order.amount = seen.price, seen.amount
            kind = "amend"
        if seen.filled > order.filled:
            order.filled = seen.filled
            order.status = OPEN
            kind = "partial_fill"
        return kind

    def forget(self, client_order_id: str, status: str) -> TrackedOrder | None:
        """End an order without an event from the venue (it never reached it)."""
        order = self._orders.get(client_order_id)
        if order is not None:
            self._finish(order, status, order.filled)
        return order

    def _finish(self, order: TrackedOrder, status: str, filled: Decimal) -> None:
        order.status = status
        order.filled = filled
        cid = order.client_order_id
        del self._orders[cid]
        siblings = self._by_instrument[order.instrument_key]
        del siblings[cid]
        if not siblings:
            del self._by_instrument[order.instrument_key]
        finished = self._finished
        finished[cid] = status
        if len(finished) > self._finished_capacity:
            finished.popitem(last=False)

    # -- views -------------------------------------------------------------------------------

    def working(self, instrument_key: str) -> Iterator[TrackedOrder]:
        """Every unfinished order of the instrument: what can still fill (risk's view)."""
        return iter(self._by_instrument.get(instrument_key, {}).values())

    def quoting(self, instrument_key: str, strategy: str | None = None) -> list[TrackedOrder]:
        """The unfinished orders not being cancelled: what the desired state is diffed against.

        With a `strategy`, only its own orders and those of no known strategy (adopted from
        the venue): one strategy's intent never cancels another's quotes on the account.
        """
        orders = self._by_instrument.get(instrument_key)
        if not orders:
            return []
        return [
            order for order in orders.values()
            if not order.cancel_requested
            and (strategy is None or order.strategy is None or order.strategy == strategy)
        ]

    def instruments(self) -> list[str]:
        return list(self._by_instrument)

    def __iter__(self) -> Iterator[TrackedOrder]:
        return iter(list(self._orders.values()))

    def __len__(self) -> int:
        return len(self._orders)
