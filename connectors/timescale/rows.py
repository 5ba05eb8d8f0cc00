"""Which table each event is stored in, and the row it becomes (columns as in `schema`).

Row makers check what the database cannot: a price or size that is not an exact, finite
`Decimal` (a float would be stored inexactly, a NaN would be stored as NaN) is refused
here, with the reason, instead of being written. Everything else the server itself rejects
(and the writer isolates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from connectors.timescale import schema
from models.audit import AuditRecord
from models.book import OrderBook
from models.events import (
    BBO,
    ArbSignal,
    BookDelta,
    BookSnapshot,
    ControlAck,
    ControlCommand,
    Fill,
    OrderEvent,
    OrderIntent,
    Position,
    Prediction,
    RiskEvent,
    SurveillanceAlert,
    Trade,
)

Row = tuple[Any, ...]

_EPOCH = datetime(1970, 1, 1)  # naive: the text says +00 itself
# What a `bigint` nanosecond column holds: the years 1677 to 2262.
_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1

# Levels summed per side for `bid_depth`/`ask_depth` in md_book_top.
BOOK_DEPTH_LEVELS = 10


class BadRow(ValueError):
    """An event that cannot be stored as it is; the message is the dead letter's reason."""


class _TimestampText:
    """Nanoseconds since the epoch as `timestamptz` input text, truncated to the microsecond.

    Text, not `datetime`: psycopg's datetime dumper costs several µs per value, a third of
    a row's whole budget. Events arrive in time order, so the formatted second is cached;
    the cache is one tuple, swapped atomically, so concurrent writers never mix its halves.
    """

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        self._cached = (None, "")

    def __call__(self, ns: int) -> str:
        second, micros = divmod(ns // 1000, 1_000_000)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = (_EPOCH + timedelta(seconds=second)).isoformat(sep=" ")
            self._cached = (second, prefix)
        return f"{prefix}.{micros:06d}+00"


ts_text = _TimestampText()


def is_timestamp_ns(value: object) -> bool:
    """Whether `value` is integer nanoseconds that fit the `*_ns` columns."""
    return type(value) is int and _MIN_NS <= value <= _MAX_NS


# Numbers leave as their exact decimal text: cheaper to COPY than `Decimal` objects, and
# PostgreSQL's numeric input keeps every digit and the scale (`2.890` stays `2.890`).
def _exact(value: Decimal) -> str:
    if value.__class__ is Decimal and value.is_finite():
        return str(value)
    raise BadRow(f"not a finite Decimal: {value!r}")


def _exact_or_none(value: Decimal | None) -> str | None:
    return None if value is None else _exact(value)


def bbo_row(e: BBO) -> Row:
    return (
        ts_text(e.exchange_ts), e.exchange_ts, e.receive_ts, e.venue, e.symbol, e.seq,
        _exact(e.bid_price), _exact(e.bid_size), _exact(e.ask_price), _exact(e.ask_size),
    )


def trade_row(e: Trade) -> Row:
    return (
        ts_text(e.exchange_ts), e.exchange_ts, e.receive_ts, e.venue, e.symbol, e.seq,
        e.trade_id, e.side, _exact(e.price), _exact(e.size),
    )


def intent_row(e: OrderIntent) -> Row:
    return (
        ts_text(e.ts), e.ts, e.venue, e.symbol, e.intent_id, e.strategy,
        [_exact(q.price) for q in e.bids], [_exact(q.size) for q in e.bids],
        [_exact(q.price) for q in e.asks], [_exact(q.size) for q in e.asks],
        _exact_or_none(e.reference_mid), e.trigger_receive_ts,
    )


def order_event_row(e: OrderEvent) -> Row:
    return (
        ts_text(e.ts), e.ts, e.venue, e.symbol, e.kind, e.client_order_id, e.exchange_order_id,
        e.side, _exact_or_none(e.price), _exact(e.size), _exact(e.filled), _exact(e.remaining),
        e.reason,
    )


def fill_row(e: Fill) -> Row:
    return (
        ts_text(e.ts), e.ts, e.venue, e.symbol, e.client_order_id, e.trade_id, e.side,
        _exact(e.price), _exact(e.size), _exact(e.fee), e.fee_currency, e.liquidity,
    )


def position_row(e: Position) -> Row:
    return (
        ts_text(e.ts), e.ts, e.venue, e.symbol, _exact(e.quantity), _exact_or_none(e.average_price),
        _exact(e.realized_pnl), _exact(e.unrealized_pnl), _exact(e.fees),
        _exact_or_none(e.mark_price),
    )


def arb_signal_row(e: ArbSignal) -> Row:
    return (
        ts_text(e.ts), e.ts, e.kind, e.buy_venue, e.buy_symbol, _exact(e.buy_price),
        e.sell_venue, e.sell_symbol, _exact(e.sell_price), _exact(e.size),
        e.gross_edge_bps, e.net_edge_bps, e.buy_age_ns, e.sell_age_ns,
    )


def prediction_row(e: Prediction) -> Row:
    return (
        ts_text(e.ts), e.ts, e.venue, e.symbol, e.horizon_ns, e.model, e.prob_up, e.prob_down,
        e.expected_move, e.rolling_accuracy, e.baseline_accuracy, e.rolling_log_loss,
    )


def risk_event_row(e: RiskEvent) -> Row:
    return (ts_text(e.ts), e.ts, e.kind, e.reason_code, e.detail, e.state, e.venue, e.symbol)


def control_row(e: ControlCommand) -> Row:
    return (ts_text(e.ts), e.ts, e.command_id, e.issued_by, e.action, e.target, Jsonb(e.params),
            e.v, e.nonce, e.key_id, e.signature)


def control_ack_row(e: ControlAck) -> Row:
    return (ts_text(e.ts), e.ts, e.process, e.command_id, e.issued_by, e.action, e.target,
            e.status, e.reason, Jsonb(e.state))


def surveillance_alert_row(e: SurveillanceAlert) -> Row:
    return (ts_text(e.ts), e.ts, e.alert_id, e.account, e.venue, e.symbol, e.kind, e.value,
            e.threshold, e.window_ns, e.detail, Jsonb(e.client_order_ids))


def audit_row(r: AuditRecord) -> Row:
    return (ts_text(r.ts), r.ts, r.seq, r.actor, r.action, Jsonb(r.payload), r.prev_hash, r.hash)


def dead_letter_row(ts_ns: int, source: str, reason: str, raw: str) -> Row:
    return (ts_text(ts_ns), ts_ns, source, reason, raw)


class BookTops:
    """One order book per instrument, turning each L2 message into its md_book_top row.

    The caller must route all of an instrument's book events here in order (the persist
    sink partitions by instrument, or by Kafka partition, for exactly this). `touched` holds
    the keys of the books changed since the caller last took them (`take_touched`), so a
    writer can store them with its rows and `restore` them after a restart.
    """

    __slots__ = ("_books", "_touched")

    def __init__(self) -> None:
        self._books: dict[str, OrderBook] = {}
        self._touched: set[str] = set()

    def restore(self, books: dict[str, OrderBook]) -> None:
        self._books.update(books)

    def take_touched(self) -> dict[str, OrderBook]:
        touched = {key: self._books[key] for key in self._touched}
        self._touched = set()
        return touched

    def row(self, e: BookSnapshot | BookDelta) -> Row:
        key = e.key
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = OrderBook(e.venue, e.symbol)
        self._touched.add(key)
        try:
            status = book.apply(e)
        except (TypeError, ValueError, AttributeError) as error:
            raise BadRow(f"book rejected the event: {error}") from error
        bid = book.best_bid()
        ask = book.best_ask()
        return (
            ts_text(e.exchange_ts), e.exchange_ts, e.receive_ts, e.venue, e.symbol, e.seq,
            "snapshot" if e.__class__ is BookSnapshot else "delta",
            status.value,
            len(e.bids) + len(e.asks),
            *(bid or (None, None)),
            *(ask or (None, None)),
            _depth(book, "bid") if bid else None,
            _depth(book, "ask") if ask else None,
        )


def _depth(book: OrderBook, side: str) -> str:
    return str(sum((size for _, size in book.levels(side, BOOK_DEPTH_LEVELS)), Decimal(0)))


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
    SurveillanceAlert: (schema.SURVEILLANCE_ALERTS, surveillance_alert_row),
    ControlCommand: (schema.CONTROL_COMMANDS, control_row),
    ControlAck: (schema.CONTROL_ACKS, control_ack_row),
    AuditRecord: (schema.AUDIT, audit_row),
}
