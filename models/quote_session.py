"""The production quote session: one instrument's book and quote engine on Kafka.

On Kafka the paper venue sits behind the executor, so the session only turns what it reads
into desired states: market events (`md.*`) into the book and the estimators, our own
`Fill`s (`orders.events`) into inventory, and `Prediction`s (`signals.pred`) into a skew of
the reservation price (`prediction_weight` × the prediction's expected move, off at 0).

Quotes are recomputed on book changes only. Fills and predictions come from other topics,
so where they fall between two book events depends on consumer timing; applying them as
state and quoting at the next book change keeps each intent a function of (book events so
far, fills applied, predictions applied). The intent id carries those two counts, so after
a crash and replay an id is only ever reused for the very same content: the executor can
drop a repeated id unseen. The session is picklable: Bytewax snapshots it for recovery.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from decimal import Decimal

import msgspec

from models.book import OrderBook
from models.book_view import TopOfBook
from models.events import BBO, BookDelta, BookSnapshot, Event, Fill, OrderIntent, Prediction, Trade
from models.instrument import Instrument
from models.quote_engine import ModelFallbacks, QuoteEngine, build_engine
from models.strategies import build_strategy
from models.strategies.base import DesiredQuotes, MarketState, Strategy

# Enough to catch an executor re-publishing its recent fills after a restart.
_REMEMBERED_FILLS = 4096


class QuoteSessionOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What every instrument's session is built from (`quoteflow.config.QuoteConfig`)."""

    strategy: str = "avellaneda-stoikov-infinite"
    params: dict[str, str] = {}
    max_inventory_lots: Decimal = Decimal(10)
    prediction_weight: float = 0.0
    fallbacks: ModelFallbacks | None = None
    top_of_book: bool = False

    def __post_init__(self) -> None:
        if self.max_inventory_lots <= 0:
            raise ValueError(f"max_inventory_lots must be > 0, got {self.max_inventory_lots}")
        if self.prediction_weight < 0:
            raise ValueError(f"prediction_weight must be >= 0, got {self.prediction_weight}")
        build_strategy(self.strategy, self.params)  # unknown strategy or bad params fail here


class SkewedStrategy:
    """A strategy whose reservation price is shifted by `skew` (price units)."""

    __slots__ = ("inner", "skew")

    def __init__(self, inner: Strategy):
        self.inner = inner
        self.skew = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def order_size(self) -> float:
        return self.inner.order_size

    def quote(self, state: MarketState) -> DesiredQuotes:
        if self.skew:
            state = replace(state, skew=state.skew + self.skew)
        return self.inner.quote(state)


class QuoteSession:
    """Book + quote engine of one instrument; `on_event` returns the new intents (0 or 1)."""

    __slots__ = (
        "_fill_ids",
        "_fill_order",
        "_skew_until_ns",
        "_strategy",
        "book",
        "engine",
        "fills",
        "ignored",
        "prediction_weight",
        "predictions",
    )

    def __init__(self, engine: QuoteEngine, book, *, prediction_weight: float = 0.0):
        if not isinstance(engine.strategy, SkewedStrategy):
            raise TypeError("the engine's strategy must be a SkewedStrategy")
        self.engine = engine
        self.book = book
        self.prediction_weight = prediction_weight
        self.fills = 0
        self.predictions = 0
        self.ignored = 0
        self._strategy = engine.strategy
        self._skew_until_ns = 0
        self._fill_ids: set[tuple[str, str]] = set()
        self._fill_order: deque[tuple[str, str]] = deque()

    @property
    def inventory(self) -> Decimal:
        return self.engine.inventory

    def on_event(self, event: Event) -> list[OrderIntent]:
        kind = type(event)
        if kind is BookDelta or kind is BookSnapshot:
            if isinstance(self.book, TopOfBook):
                return []
            self.book.apply(event)
            return self._quote(event.receive_ts)
        if kind is BBO:
            if not isinstance(self.book, TopOfBook):
                return []
            self.book.apply(event)
            return self._quote(event.receive_ts)
        if kind is Trade:
            self.engine.on_trade(event, self._mid())
        elif kind is Fill:
            self._on_fill(event)
        elif kind is Prediction:
            self._on_prediction(event)
        else:
            self.ignored += 1  # acks, cancels, position samples: the executor's business
        return []

    def close(self) -> list[OrderIntent]:
        """Nothing to pull: the executor owns the orders (`flows.quote.Session` protocol)."""
        return []

    def _quote(self, ts: int) -> list[OrderIntent]:
        if self._strategy.skew and ts > self._skew_until_ns:
            self._strategy.skew = 0.0  # a forecast past its horizon says nothing any more
        intent = self.engine.on_book(ts, self.book, ts)
        if intent is None:
            return []
        intent.intent_id = f"{intent.intent_id}:{self.fills}:{self.predictions}"
        return [intent]

    def _mid(self) -> float | None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return None
        return (float(bid[0]) + float(ask[0])) / 2

    def _on_fill(self, fill: Fill) -> None:
        fill_id = (fill.client_order_id, fill.trade_id)
        if fill_id in self._fill_ids:
            return
        self._fill_ids.add(fill_id)
        self._fill_order.append(fill_id)
        if len(self._fill_order) > _REMEMBERED_FILLS:
            self._fill_ids.discard(self._fill_order.popleft())
        self.fills += 1
        self.engine.on_fill(fill)

    def _on_prediction(self, prediction: Prediction) -> None:
        self.predictions += 1
        if self.prediction_weight:
            self._strategy.skew = self.prediction_weight * prediction.expected_move
            self._skew_until_ns = prediction.ts + prediction.horizon_ns


def build_quote_session(instrument: Instrument, options: QuoteSessionOptions) -> QuoteSession:
    engine = build_engine(
        instrument,
        options.strategy,
        options.params,
        max_inventory_lots=options.max_inventory_lots,
        fallbacks=options.fallbacks,
        wrap_strategy=SkewedStrategy,
    )
    book = TopOfBook() if options.top_of_book else OrderBook(instrument.venue, instrument.symbol)
    return QuoteSession(engine, book, prediction_weight=options.prediction_weight)
