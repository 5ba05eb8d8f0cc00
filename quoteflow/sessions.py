"""Builds the per-instrument paper-trading state the quote flow keeps.

Shared by `quoteflow run` (simulated market) and `quoteflow backtest` (recordings): the
only differences are the book (full L2 for recordings, top of book for the simulator) and
where the model inputs come from before the estimators warm up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.paper_trading import PaperTradingSession
from connectors.paper_venue import PaperVenue
from models.accounting import PositionLedger
from models.book import OrderBook
from models.book_view import TopOfBook
from connectors.venues.market_cache import instrument_for
from models.instrument import Instrument
from models.markouts import MarkoutTracker
from models.quote_engine import ModelFallbacks, build_engine
from models.strategies import build_strategy

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class TradingOptions:
    strategy: str
    params: Mapping[str, str] = field(default_factory=dict)
    max_inventory_lots: Decimal = Decimal(10)
    order_latency_ms: float = 0.0
    market_data_latency_ms: float = 0.0
    sample_interval_ms: float = 250.0
    horizon_end_ns: int | None = None
    fallbacks: ModelFallbacks | None = None
    top_of_book: bool = False


class UntradedInstrument:
    """Stands in for an instrument without known trading rules: counts its events, trades nothing.

    Quoting without the venue's tick, step and minimum notional would send orders the venue
    rejects, so such instruments are reported instead of guessed at.
    """

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        self.events = 0

    def on_event(self, event) -> list:
        self.events += 1
        return []

    def close(self) -> list:
        return []


class SessionRegistry:
    """Creates sessions on demand and keeps them so a run can report on them afterwards."""

    def __init__(
        self,
        options: TradingOptions,
        instruments: Callable[[str, str], Instrument] = instrument_for,
    ):
        build_strategy(options.strategy, options.params)  # fail before any data is read
        self._options = options
        self._instruments = instruments
        self.sessions: dict[str, PaperTradingSession] = {}
        self.untraded: dict[str, UntradedInstrument] = {}

    def __call__(self, key: str) -> PaperTradingSession | UntradedInstrument:
        venue, symbol = key.split(":", 1)
        try:
            instrument = self._instruments(venue, symbol)
        except KeyError as error:
            untraded = self.untraded[key] = UntradedInstrument(key, str(error.args[0]))
            return untraded
        session = self.sessions[key] = self._build(instrument)
        return session

    def _build(self, instrument: Instrument) -> PaperTradingSession:
        options = self._options
        engine = build_engine(
            instrument,
            options.strategy,
            options.params,
            max_inventory_lots=options.max_inventory_lots,
            fallbacks=options.fallbacks,
            horizon_end_ns=options.horizon_end_ns,
        )
        venue = PaperVenue(
            [instrument],
            order_latency_ns=int(options.order_latency_ms * NS_PER_MS),
            market_data_latency_ns=int(options.market_data_latency_ms * NS_PER_MS),
        )
        symbol = instrument.symbol
        book = TopOfBook() if options.top_of_book else OrderBook(instrument.venue, symbol)
        return PaperTradingSession(
            engine,
            venue,
            book,
            ledger=PositionLedger(instrument),
            markouts=MarkoutTracker(),
            sample_interval_ns=int(options.sample_interval_ms * NS_PER_MS),
        )
