"""One instrument's quoting state: book, quote engine, inventory, predictions, cadence.

The same session quotes in every mode: in the Kafka quote flow, where the executor is
another process and our fills come back on `orders.events`, and in backtests and the
embedded default, where `connectors.paper.trading` puts the executor and the paper venue
beside it on one market clock. It turns what it reads into desired states: market events
into the fresh book (`models.fresh_book`: the fresher of the L2 book and the BBO) and the
estimators, our own `Fill`s into inventory, and `Prediction`s into a skew of the
reservation price (`prediction_weight` × the prediction's expected move, off at 0).

Cadence: event-driven by default (a quote after every L2 change and every move of a touch
price); with `requote_ms` instead at fixed multiples of that interval, each one on the
state as it was at that time (`on_timer`), as clock-driven engines such as hftbacktest do.

Fills and predictions come from other topics, so where they fall between two book events
depends on consumer timing; applying them as state and quoting at the next book change
keeps each intent a function of (book events so far, fills applied, predictions applied).
The intent id carries those two counts, so after a crash and replay an id is only ever
reused for the very same content: the executor can drop a repeated id unseen. The session is
picklable: Bytewax snapshots it for recovery.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from decimal import Decimal

import msgspec

from models.book import OrderBook
from models.events import (
    BBO,
    AnyMarketEvent,
    BookDelta,
    BookSnapshot,
    Event,
    Fill,
    OrderIntent,
    Prediction,
    Trade,
)
from models.flow_control import FlowControl, InstrumentControl, StrategyChoice
from models.fresh_book import FreshBook
from models.instrument import Instrument
from models.quote_engine import ModelFallbacks, QuoteEngine, build_engine, strategy_setup
from models.strategies import build_strategy
from models.strategies.base import DesiredQuotes, MarketState, Strategy, is_memoryless

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
    requote_ms: float = 0.0  # 0: event-driven
    horizon_end_ns: int | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.requote_ms <= 3_600_000):
            raise ValueError(
                f"requote_ms must be 0 (event-driven) to 3600000, got {self.requote_ms}"
            )
        # NaN compares false (a Decimal NaN raises): a number is checked finite first.
        if not self.max_inventory_lots.is_finite() or self.max_inventory_lots <= 0:
            raise ValueError(f"max_inventory_lots must be > 0, got {self.max_inventory_lots}")
        if not 0 <= self.prediction_weight < math.inf:
            raise ValueError(
                f"prediction_weight must be a number >= 0, got {self.prediction_weight}"
            )
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

    @property
    def memoryless(self) -> bool:
        """As the inner strategy: the skew is an input the engine compares too."""
        return is_memoryless(self.inner)

    def quote(self, state: MarketState) -> DesiredQuotes:
        if self.skew:
            state = msgspec.structs.replace(state, skew=state.skew + self.skew)
        return self.inner.quote(state)


class QuoteSession:
    """Book + quote engine of one instrument; `on_event` returns the new intents (0 or 1+)."""

    __slots__ = (
        "_choice",
        "_control_version",
        "_fill_ids",
        "_fill_order",
        "_last_exchange_ts",
        "_last_receive_ts",
        "_max_inventory_lots",
        "_next_requote_ns",
        "_paused",
        "_requote_ns",
        "_skew_until_ns",
        "_strategy",
        "book",
        "engine",
        "fills",
        "ignored",
        "prediction_weight",
        "predictions",
    )

    def __init__(
        self, engine: QuoteEngine, book: FreshBook, *, prediction_weight: float = 0.0,
        requote_ns: int = 0, choice: StrategyChoice | None = None,
        max_inventory_lots: Decimal = Decimal(10),
    ):
        """`choice` is the strategy the engine was built with and `max_inventory_lots` its
        limit: an operator's strategy switch (`on_control`) keeps the limit in lots."""
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
        self._requote_ns = requote_ns
        self._next_requote_ns: int | None = None
        self._last_exchange_ts = 0
        self._last_receive_ts: int | None = None
        self._choice = choice or StrategyChoice(strategy=engine.strategy.name)
        self._max_inventory_lots = max_inventory_lots
        self._control_version = 0
        self._paused = False

    @property
    def inventory(self) -> Decimal:
        return self.engine.inventory

    def on_event(self, event: Event) -> list[OrderIntent]:
        kind = type(event)
        if kind is BookDelta or kind is BookSnapshot or kind is BBO or kind is Trade:
            out = self.on_timer(event.receive_ts) if self._requote_ns else []
            out.extend(self.requote(event, self.observe(event)))
            return out
        if kind is Fill:
            self._on_fill(event)
        elif kind is Prediction:
            self._on_prediction(event)
        elif kind is InstrumentControl:
            return self.on_control(event.control)
        else:
            self.ignored += 1  # acks, cancels, position samples: the executor's business
        return []

    def observe(self, event: AnyMarketEvent) -> bool:
        """The market event into the book or the estimators; True when the book view changed
        (`requote` then decides). `on_event` is `observe` then `requote`: the paper trader
        calls them apart so its venue matches on the same book in between."""
        if self._requote_ns and self._next_requote_ns is None:
            step = self._requote_ns  # the cadence starts at the first boundary after the data
            self._next_requote_ns = (event.receive_ts // step + 1) * step
        self._last_receive_ts = event.receive_ts
        if type(event) is Trade:
            self.engine.on_trade(event, self._mid())
            return False
        changed = self.book.apply(event)
        self._last_exchange_ts = event.exchange_ts
        return changed

    def requote(self, event: AnyMarketEvent, changed: bool) -> list[OrderIntent]:
        """The intent, if any, after `observe(event)`: on a change of the L2 book or of a
        touch price (event-driven), or at a cadence boundary falling on the event's time."""
        if self._requote_ns:
            if event.receive_ts == self._next_requote_ns:
                self._next_requote_ns += self._requote_ns
                return self._quote(event.receive_ts, self._last_exchange_ts)
            return []
        if changed and (type(event) is not BBO or self.book.touch_moved):
            return self._quote(event.receive_ts, event.exchange_ts)
        return []

    def on_timer(self, now_ns: int) -> list[OrderIntent]:
        """With a fixed cadence: quote at the last interval boundary before `now_ns`, on the
        state as it was then (nothing happened between that boundary and `now_ns`)."""
        boundary = self.boundary_before(now_ns)
        if boundary is None:
            return []
        self._next_requote_ns = boundary + self._requote_ns
        return self._quote(boundary, self._last_exchange_ts)

    def boundary_before(self, now_ns: int) -> int | None:
        """The last cadence boundary strictly before `now_ns` not quoted yet, if any."""
        step, following = self._requote_ns, self._next_requote_ns
        if not step or following is None or now_ns <= following:
            return None
        return following + (now_ns - 1 - following) // step * step

    @property
    def next_requote_ns(self) -> int | None:
        """The next boundary of a fixed cadence (None: event-driven, or not started)."""
        return self._next_requote_ns if self._requote_ns else None

    def close(self) -> list[OrderIntent]:
        """Nothing to pull: the executor owns the orders (`flows.quote.Session` protocol)."""
        return []

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def choice(self) -> StrategyChoice:
        return self._choice

    def on_control(self, control: FlowControl) -> list[OrderIntent]:
        """The operators' state (`models.flow_control`) from now on: a strategy switch or new
        parameters quote at once, a pause withdraws every quote, a resume quotes again, each
        on the book as it is (once there is one). An older state than the one applied is a
        repeated broadcast and changes nothing."""
        if control.version <= self._control_version:
            return []
        self._control_version = control.version
        key = self.engine.instrument.key
        choice, paused = control.choice_for(key), control.is_paused(key)
        changed = paused != self._paused
        self._paused = paused
        if not choice.same_quoting(self._choice):
            strategy, limits = strategy_setup(
                self.engine.instrument, choice.strategy, choice.params, self._max_inventory_lots
            )
            self._strategy.inner = strategy  # the skew from predictions stays
            self.engine.switch(self._strategy, limits)
            changed = True
        self._choice = choice
        now = self._last_receive_ts
        if not changed or now is None:
            return []
        if paused:
            intent = self.engine.withdraw(now, now)
            return [] if intent is None else [self._identified(intent, self._last_exchange_ts)]
        return self._quote(now, self._last_exchange_ts)

    def _quote(self, ts: int, trigger_exchange_ts: int) -> list[OrderIntent]:
        if self._paused:
            return []  # the empty desired state went out when the pause was applied
        if self._strategy.skew and ts > self._skew_until_ns:
            self._strategy.skew = 0.0  # a forecast past its horizon says nothing any more
        intent = self.engine.on_book(ts, self.book, ts)
        if intent is None:
            return []
        return [self._identified(intent, trigger_exchange_ts)]

    def _identified(self, intent: OrderIntent, trigger_exchange_ts: int) -> OrderIntent:
        # The operators' state counts like fills and predictions: applied between two book
        # events where the input's timing put it, so it is part of what makes the id unique.
        intent.intent_id = f"{intent.intent_id}:{self.fills}:{self.predictions}"
        if self._control_version:
            intent.intent_id += f":c{self._control_version}"
        intent.trigger_exchange_ts = trigger_exchange_ts
        return intent

    def _mid(self) -> float | None:
        bid, ask = self.book.bid, self.book.ask
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


class UntradedInstrument:
    """Stands in for an instrument without known trading rules: counts its events, trades
    nothing. Quoting without the venue's tick, step and minimum notional would send orders
    the venue rejects, so such instruments are reported instead of guessed at."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        self.events = 0

    def on_event(self, event) -> list:
        self.events += 1
        return []

    def close(self) -> list:
        return []


def build_quote_session(instrument: Instrument, options: QuoteSessionOptions) -> QuoteSession:
    engine = build_engine(
        instrument,
        options.strategy,
        options.params,
        max_inventory_lots=options.max_inventory_lots,
        fallbacks=options.fallbacks,
        horizon_end_ns=options.horizon_end_ns,
        wrap_strategy=SkewedStrategy,
    )
    l2 = None if options.top_of_book else OrderBook(instrument.venue, instrument.symbol)
    return QuoteSession(
        engine, FreshBook(l2), prediction_weight=options.prediction_weight,
        requote_ns=round(options.requote_ms * 1_000_000),
        choice=StrategyChoice(strategy=options.strategy, params=dict(options.params)),
        max_inventory_lots=options.max_inventory_lots,
    )


class QuoteSessions:
    """key → the instrument's `QuoteSession`, or a counting stand-in when its rules are
    unknown (`instruments` raises KeyError for those)."""

    def __init__(
        self, options: QuoteSessionOptions, instruments: Callable[[str, str], Instrument]
    ):
        self._options = options
        self._instruments = instruments

    def __call__(self, key: str) -> QuoteSession | UntradedInstrument:
        venue, symbol = key.split(":", 1)
        try:
            instrument = self._instruments(venue, symbol)
        except KeyError as error:
            return UntradedInstrument(key, str(error.args[0]))
        return build_quote_session(instrument, self._options)
