"""Which table each event is stored in, and the row it becomes (columns as in `schema`).

Row makers check what the database cannot: a price or size that is not an exact, finite
`Decimal` (a float would be stored inexactly, a NaN would be stored as NaN) is refused
here, with the reason, instead of being written. Everything else the server itself rejects
(and the writer isolates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from connectors.timescale import schema
from models.book import OrderBook
from models.events import (
    BBO,
    ArbSignal,
    BookDelta,
    BookSnapshot,
    ControlCommand,
    Fill,
    OrderEvent,
    OrderIntent,
    Position,
    Prediction,
    RiskEvent,
    Trade,
)

Row = tuple[Any, ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Python's datetime range (years 1 to 9999), narrower than PostgreSQL's.
_MIN_NS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * 1000
_MAX_NS = (datetime(9999, 12, 31, 23, 59, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * 1000

# Levels summed per side for `bid_depth`/`ask_depth` in md_book_top.
BOOK_DEPTH_LEVELS = 10


class BadRow(ValueError):
    """An event that cannot be stored as it is; the message is the dead letter's reason."""


def utc(ns: int) -> datetime:
    """Nanoseconds since the epoch as a `timestamptz` value (microseconds, truncated)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def is_timestamp_ns(value: object) -> bool:
    """Whether `value` is integer nanoseconds that `utc` can turn into a timestamp."""
    return type(value) is int and _MIN_NS <= value <= _MAX_NS


def _exact(value: Decimal) -> Decimal:
    if value.__class__ is Decimal and value.is_finite():
        return value
    raise BadRow(f"not a finite Decimal: {value!r}")


def _all_exact(*values: Decimal) -> None:
    for value in values:
        if value.__class__ is not Decimal or not value.is_finite():
            raise BadRow(f"not a finite Decimal: {value!r}")


def _exact_or_none(value: Decimal | None) -> Decimal | None:
    return None if value is None else _exact(value)


# The two hottest makers check their numbers in one call: it is per-row cost at 100k rows/s.
def bbo_row(e: BBO) -> Row:
    top = (e.bid_price, e.bid_size, e.ask_price, e.ask_size)
    _all_exact(*top)
    return (utc(e.exchange_ts), e.exchange_ts, e.receive_ts, e.venue, e.symbol, e.seq, *top)


def trade_row(e: Trade) -> Row:
    price, size = e.price, e.size
    _all_exact(price, size)
    return (
        utc(e.exchange_ts), e.exchange_ts, e.receive_ts, e.venue, e.symbol, e.seq,
        e.trade_id, e.side, price, size,
    )


def intent_row(e: OrderIntent) -> Row:
    return (
        utc(e.ts), e.ts, e.venue, e.symbol, e.intent_id, e.strategy,
        [_exact(q.price) for q in e.bids], [_exact(q.size) for q in e.bids],
        [_exact(q.price) for q in e.asks], [_exact(q.size) for q in e.asks],
        _exact_or_none(e.reference_mid), e.trigger_receive_ts,
    )


def order_event_row(e: OrderEvent) -> Row:
    return (
        utc(e.ts), e.ts, e.venue, e.symbol, e.kind, e.client_order_id, e.exchange_order_id,
        e.side, _exact_or_none(e.price), _exact(e.size), _exact(e.filled), _exact(e.remaining),
        e.reason,
    )


def fill_row(e: Fill) -> Row:
    return (
        utc(e.ts), e.ts, e.venue, e.symbol, e.client_order_id, e.trade_id, e.side,
        _exact(e.price), _exact(e.size), _exact(e.fee), e.fee_currency, e.liquidity,
    )


def position_row(e: Position) -> Row:
    return (
        utc(e.ts), e.ts, e.venue, e.symbol, _exact(e.quantity), _exact_or_none(e.average_price),
        _exact(e.realized_pnl), _exact(e.unrealized_pnl), _exact(e.fees),
        _exact_or_none(e.mark_price),
    )


def arb_signal_row(e: ArbSignal) -> Row:
    return (
        utc(e.ts), e.ts, e.kind, e.buy_venue, e.buy_symbol, _exact(e.buy_price),
        e.sell_venue, e.sell_symbol, _exact(e.sell_price), _exact(e.size),
        e.gross_edge_bps, e.net_edge_bps, e.buy_age_ns, e.sell_age_ns,
    )


def prediction_row(e: Prediction) -> Row:
    return (
        utc(e.ts), e.ts, e.venue, e.symbol, e.horizon_ns, e.model, e.prob_up, e.prob_down,
        e.expected_move, e.rolling_accuracy, e.baseline_accuracy, e.rolling_log_loss,
    )


def risk_event_row(e: RiskEvent) -> Row:
    return (utc(e.ts), e.ts, e.kind, e.reason_code, e.detail, e.state, e.venue, e.symbol)


def control_row(e: ControlCommand) -> Row:
    return (utc(e.ts), e.ts, e.command_id, e.issued_by, e.action, e.target, Jsonb(e.params))


def dead_letter_row(ts_ns: int, source: str, reason: str, raw: str) -> Row:
    return (utc(ts_ns), ts_ns, source, reason, raw)


class BookTops:
    """One order book per instrument, turning each L2 message into its md_book_top row.

    The caller must route all of an instrument's book events here in order (the persist
    sink partitions by instrument for exactly this).
    """

    __slots__ = ("_books",)

    def __init__(self) -> None:
        self._books: dict[str, OrderBook] = {}

    def row(self, e: BookSnapshot | BookDelta) -> Row:
        book = self._books.get(e.key)
        if book is None:
            book = self._books[e.key] = OrderBook(e.venue, e.symbol)
        try:
            status = book.apply(e)
        except (TypeError, ValueError, AttributeError) as error:
            raise BadRow(f"book rejected the event: {error}") from error
        bid = book.best_bid()
        ask = book.best_ask()
        return (
            utc(e.exchange_ts), e.exchange_ts, e.receive_ts, e.venue, e.symbol, e.seq,
            "snapshot" if e.__class__ is BookSnapshot else "delta",
            status.value,
            len(e.bids) + len(e.asks),
            *(bid or (None, None)),
            *(ask or (None, None)),
            _depth(book, "bid") if bid else None,
            _depth(book, "ask") if ask else None,
        )


def _depth(book: OrderBook, side: str) -> Decimal:
    return sum((size for _, size in book.levels(side, BOOK_DEPTH_LEVELS)), Decimal(0))


RowMaker = Callable[[Any], Row]

# Stateless makers by exact event type; book events and dead letters need the writer's state.
ROW_MAKERS: dict[type, tuple[schema.Table, RowMaker]] = {
    BBO: (schema.MD_BBO, bbo_row),
    Trade: (schema.MD_TRADES, trade_row),
    OrderIntent: (schema.ORDER_INTENTS, intent_row),
    OrderEvent: (schema.ORDER_EVENTS, order_event_row),
    Fill: (schema.FILLS, fill_row),
    Position: (schema.POSITIONS, position_row),
    ArbSignal: (schema.ARB_SIGNALS, arb_signal_row),
    Prediction: (schema.PREDICTIONS, prediction_row),
    RiskEvent: (schema.RISK_EVENTS, risk_event_row),
    ControlCommand: (schema.CONTROL_COMMANDS, control_row),
}
