"""Per-instrument quoting: book → estimators → strategy → limits → an order intent.

The engine owns everything the quote flow keeps per instrument except the book itself:
the volatility and intensity estimators, the inventory (from our fills) and the last
desired state, so that it only emits an intent when the desired quotes change.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from models.book_view import BookView
from models.estimators import IntensityEstimator, VolatilityEstimator
from models.events import Fill, OrderIntent, Quote, Trade
from models.instrument import Instrument, InstrumentRuleError
from models.strategies import build_strategy, strategy_params
from models.strategies.base import MarketState, QuoteLevel, Strategy, is_memoryless


@dataclass(frozen=True, slots=True)
class QuoteLimits:
    """Simple pre-trade limits applied to every desired state.

    `max_inventory` caps |position| in base units: quotes that could take the position past it
    are not sent. `max_order_size` caps each order's size.
    """

    max_inventory: Decimal
    max_order_size: Decimal


@dataclass(frozen=True, slots=True)
class ModelFallbacks:
    """Model inputs used until the online estimators have enough data.

    Without fallbacks the engine does not quote until the estimators are ready.
    """

    sigma: float
    A: float
    k: float


class QuoteEngine:
    __slots__ = (
        "_fallbacks",
        "_horizon_end_ns",
        "_intensity",
        "_last_asks",
        "_last_bids",
        "_limits",
        "_quoted_from",
        "_volatility",
        "instrument",
        "intents",
        "inventory",
        "strategy",
    )

    def __init__(
        self,
        instrument: Instrument,
        strategy: Strategy,
        limits: QuoteLimits,
        *,
        volatility: VolatilityEstimator,
        intensity: IntensityEstimator,
        fallbacks: ModelFallbacks | None = None,
        horizon_end_ns: int | None = None,
    ):
        self.instrument = instrument
        self.strategy = strategy
        self._limits = limits
        self._volatility = volatility
        self._intensity = intensity
        self._fallbacks = fallbacks
        self._horizon_end_ns = horizon_end_ns
        self.inventory = Decimal(0)
        self.intents = 0
        self._last_bids: list[Quote] | None = None
        self._last_asks: list[Quote] | None = None
        # What a memoryless strategy's last desired state was made from (None: not known);
        # the same inputs again make the same quotes, which `_intent` would drop as unchanged.
        self._quoted_from: tuple | None = None

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # A Bytewax snapshot written before a slot existed (a quote flow upgraded on its
        # recovery directory) restores with that slot's starting value: `_quoted_from` None
        # ("not known") makes the next book event ask the strategy, as a fresh engine does.
        self._quoted_from = None
        for name, value in state[1].items():
            setattr(self, name, value)

    def on_fill(self, fill: Fill) -> None:
        self.inventory += fill.size if fill.side == "buy" else -fill.size
        # A fill changed what rests at the venue: the next desired state goes out even if it
        # equals the last, so the executor re-places the quote that was filled.
        self._last_bids = self._last_asks = self._quoted_from = None

    def on_trade(self, trade: Trade, mid: float | None) -> None:
        if mid is not None:
            # The taker's side, exchange time and trade id let the estimator count one
            # arrival per taker order (its prints share them), at its signed depth.
            self._intensity.on_trade(
                trade.receive_ts, float(trade.price), mid, side=trade.side,
                exchange_ts=trade.exchange_ts, trade_id=trade.trade_id,
            )

    def switch(self, strategy: Strategy, limits: QuoteLimits) -> None:
        """Quote with `strategy` within `limits` from now on (an operator's change): inventory
        and estimators carry over, and the next desired state goes out even if unchanged."""
        self.strategy = strategy
        self._limits = limits
        self._last_bids = self._last_asks = self._quoted_from = None

    def withdraw(self, ts_ns: int, trigger_receive_ts: int) -> OrderIntent | None:
        """An empty desired state (the executor cancels every quote), unless already sent."""
        return self._intent([], [], ts_ns, None, trigger_receive_ts)

    def on_book(self, ts_ns: int, book: BookView, trigger_receive_ts: int) -> OrderIntent | None:
        """The new desired state after a book change, or None when it is unchanged.

        With no two-sided book the desired state is empty: quoting blind is never safe.
        """
        best_bid, best_ask = book.best_bid(), book.best_ask()
        if best_bid is None or best_ask is None:
            return self._intent([], [], ts_ns, None, trigger_receive_ts)
        bid_px, ask_px = best_bid[0], best_ask[0]
        mid = (float(bid_px) + float(ask_px)) / 2
        self._volatility.update(ts_ns, mid)
        state = self._state(ts_ns, mid, float(bid_px), float(ask_px))
        if state is None:
            return self._intent([], [], ts_ns, None, trigger_receive_ts)
        strategy = self.strategy
        inputs = None
        if is_memoryless(strategy):
            # Everything the quotes are made from (a wrapper's skew too: `SkewedStrategy`).
            # Most book events leave it as it was (an L2 update behind the touch).
            inputs = (state, bid_px, ask_px, self.inventory, getattr(strategy, "skew", 0.0))
            if inputs == self._quoted_from:
                return None  # the same desired state as the last one, unchanged
        desired = strategy.quote(state)
        bids = self._on_grid("buy", desired.bids, ask_px)
        asks = self._on_grid("sell", desired.asks, bid_px)
        intent = self._intent(bids, asks, ts_ns, (bid_px + ask_px) / 2, trigger_receive_ts)
        self._quoted_from = inputs
        return intent

    def _state(self, ts_ns: int, mid: float, bid: float, ask: float) -> MarketState | None:
        volatility, intensity, fallbacks = self._volatility, self._intensity, self._fallbacks
        if fallbacks is None and not (volatility.ready and intensity.ready):
            return None
        time_left = None
        if self._horizon_end_ns is not None:
            time_left = max(self._horizon_end_ns - ts_ns, 0) / 1e9
        return MarketState(
            mid=mid,
            best_bid=bid,
            best_ask=ask,
            inventory=float(self.inventory),
            sigma=volatility.sigma if volatility.ready else fallbacks.sigma,
            A=intensity.A if intensity.ready else fallbacks.A,
            k=intensity.k if intensity.ready else fallbacks.k,
            time_left=time_left,
        )

    def _on_grid(
        self, side: str, levels: tuple[QuoteLevel, ...], opposite_touch: Decimal
    ) -> list[Quote]:
        """Round onto the venue's grid, keep post-only quotes off the far touch, apply limits."""
        instrument = self.instrument
        tick = instrument.tick_size
        room = self._limits.max_inventory - (self.inventory if side == "buy" else -self.inventory)
        quotes: list[Quote] = []
        seen: set[Decimal] = set()
        for level in levels:
            price = instrument.round_price(level.price, side)
            if side == "buy" and price >= opposite_touch:
                price = opposite_touch - tick
            elif side == "sell" and price <= opposite_touch:
                price = opposite_touch + tick
            size = instrument.round_size(
                min(level.size, float(self._limits.max_order_size), float(room))
            )
            if size <= 0 or price in seen:
                continue
            try:
                instrument.validate(price, size)
            except InstrumentRuleError:
                continue
            seen.add(price)
            room -= size
            quotes.append(Quote(price, size))
        return quotes

    def _intent(
        self,
        bids: list[Quote],
        asks: list[Quote],
        ts_ns: int,
        mid: Decimal | None,
        trigger_receive_ts: int,
    ) -> OrderIntent | None:
        self._quoted_from = None  # `on_book` sets it again when it knows the inputs
        if bids == self._last_bids and asks == self._last_asks:
            return None
        self._last_bids, self._last_asks = bids, asks
        self.intents += 1
        instrument = self.instrument
        return OrderIntent(
            intent_id=f"{self.strategy.name}:{instrument.key}:{trigger_receive_ts}:{self.intents}",
            venue=instrument.venue,
            symbol=instrument.symbol,
            ts=ts_ns,
            strategy=self.strategy.name,
            bids=bids,
            asks=asks,
            reference_mid=mid,
            trigger_receive_ts=trigger_receive_ts,
        )


def build_engine(
    instrument: Instrument,
    strategy_name: str,
    params: dict[str, str],
    *,
    max_inventory_lots: Decimal,
    fallbacks: ModelFallbacks | None = None,
    horizon_end_ns: int | None = None,
    wrap_strategy=None,
) -> QuoteEngine:
    """An engine quoting `strategy_name` with fresh estimators and limits in order-size lots.

    The order size defaults to the instrument's `default_order_size` when the strategy takes
    one and `params` names none; `wrap_strategy` decorates the built strategy (e.g. a skew).
    """
    strategy, limits = strategy_setup(instrument, strategy_name, params, max_inventory_lots)
    if wrap_strategy is not None:
        strategy = wrap_strategy(strategy)
    return QuoteEngine(
        instrument,
        strategy,
        limits,
        volatility=VolatilityEstimator(),
        intensity=IntensityEstimator(),
        fallbacks=fallbacks,
        horizon_end_ns=horizon_end_ns,
    )


def strategy_setup(
    instrument: Instrument, strategy_name: str, params: dict[str, str],
    max_inventory_lots: Decimal,
) -> tuple[Strategy, QuoteLimits]:
    """The strategy and its limits in order-size lots; the order size defaults to the
    instrument's `default_order_size` when the strategy takes one and `params` names none."""
    params = dict(params)
    if "order_size" in strategy_params(strategy_name) and "order_size" not in params:
        params["order_size"] = str(instrument.default_order_size)
    strategy = build_strategy(strategy_name, params)
    order_size = Decimal(str(strategy.order_size))
    limits = QuoteLimits(max_inventory=order_size * max_inventory_lots, max_order_size=order_size)
    return strategy, limits
