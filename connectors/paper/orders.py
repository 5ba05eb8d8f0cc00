"""A paper order's state and its rendering as ccxt's unified order and trade structures.

Numbers in the structures are `Decimal` (ccxt's are floats): money stays exact, and a
consumer that wants ccxt's floats converts at its own edge.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt

from models.events import Fill, Side
from models.instrument import Instrument
from models.queue_model import QueuePosition

ZERO = Decimal(0)
NS_PER_MS = 1_000_000

OPEN, CLOSED, CANCELED, REJECTED = "open", "closed", "canceled", "rejected"


class PaperOrder:
    __slots__ = (
        "amount",
        "arrival_exchange_ts",
        "book_ticks",
        "cancel_pending",
        "client_order_id",
        "cost",
        "fee",
        "filled",
        "fills",
        "id",
        "instrument",
        "last_update_ns",
        "post_only",
        "price",
        "priority",
        "queue",
        "side",
        "status",
        "time_in_force",
        "timestamp_ns",
        "trigger_exchange_ts",
        "type",
    )

    def __init__(
        self,
        *,
        id: str,
        client_order_id: str,
        instrument: Instrument,
        type: str,
        side: Side,
        price: Decimal | None,
        amount: Decimal,
        time_in_force: str,
        post_only: bool,
        timestamp_ns: int,
        trigger_exchange_ts: int | None = None,
    ) -> None:
        self.id = id
        self.client_order_id = client_order_id
        self.instrument = instrument
        self.type = type
        self.side = side
        self.price = price
        self.amount = amount
        self.time_in_force = time_in_force
        self.post_only = post_only
        self.timestamp_ns = timestamp_ns
        self.last_update_ns = timestamp_ns
        self.filled = ZERO
        self.cost = ZERO
        self.fee = ZERO
        self.fills: list[Fill] = []
        self.status = OPEN
        self.cancel_pending = False
        # Set when the order reaches the venue: not resting (in flight) until then.
        self.queue: QueuePosition | None = None
        # The price in the compiled book's ticks (`models.book.ticks`), set when it rests.
        self.book_ticks = 0
        # Time priority among our own orders at one price: the venue's arrival counter.
        self.priority = 0
        # The exchange time of the market event that made us send the order, and when the
        # venue received it (its latest create or re-pricing amend): every fill reports both.
        self.trigger_exchange_ts = trigger_exchange_ts
        self.arrival_exchange_ts: int | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def to_ccxt(self) -> dict:
        timestamp = self.timestamp_ns // NS_PER_MS
        last_trade = self.fills[-1].ts // NS_PER_MS if self.fills else None
        return {
            "info": {
                "in_flight": self.queue is None and self.status == OPEN,
                "cancel_pending": self.cancel_pending,
                "queue_ahead": self.queue.ahead if self.queue is not None else None,
            },
            "id": self.id,
            "clientOrderId": self.client_order_id,
            "timestamp": timestamp,
            "datetime": ccxt.Exchange.iso8601(timestamp),
            "lastTradeTimestamp": last_trade,
            "lastUpdateTimestamp": self.last_update_ns // NS_PER_MS,
            "symbol": self.instrument.symbol,
            "type": self.type,
            "timeInForce": self.time_in_force,
            "postOnly": self.post_only,
            "reduceOnly": False,
            "side": self.side,
            "price": self.price,
            "triggerPrice": None,
            "amount": self.amount,
            "filled": self.filled,
            "remaining": self.remaining,
            "cost": self.cost,
            "average": self.cost / self.filled if self.filled else None,
            "status": self.status,
            "fee": {"cost": self.fee, "currency": self.instrument.quote},
            "trades": [ccxt_trade(fill, self) for fill in self.fills],
        }


def ccxt_trade(fill: Fill, order: PaperOrder) -> dict:
    """ccxt's unified trade structure for one of our fills."""
    timestamp = fill.ts // NS_PER_MS
    instrument = order.instrument
    rate = instrument.maker_fee if fill.liquidity == "maker" else instrument.taker_fee
    fee = {"cost": fill.fee, "currency": fill.fee_currency, "rate": rate}
    return {
        "info": {
            "timestamp_ns": fill.ts,
            "cause": fill.cause,
            "cause_exchange_ts": fill.cause_exchange_ts,
            "order_trigger_exchange_ts": fill.order_trigger_exchange_ts,
            "order_arrival_exchange_ts": fill.order_arrival_exchange_ts,
        },
        "id": fill.trade_id,
        "order": order.id,
        "clientOrderId": order.client_order_id,
        "timestamp": timestamp,
        "datetime": ccxt.Exchange.iso8601(timestamp),
        "symbol": fill.symbol,
        "type": order.type,
        "side": fill.side,
        "takerOrMaker": fill.liquidity,
        "price": fill.price,
        "amount": fill.size,
        "cost": fill.price * fill.size,
        "fee": fee,
        "fees": [fee],
    }
