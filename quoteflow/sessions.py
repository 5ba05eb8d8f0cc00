"""Builds the per-instrument paper-trading state the quote flow keeps in `run` and `backtest`.

Every instrument gets a `connectors.paper.trading.PaperTrader`: the production quote session,
executor and the paper venue. The only differences between the two commands are the book
(full L2 for recordings, top of book for the simulator) and where the model inputs come from
before the estimators warm up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.paper.trading import PaperSettings, PaperTrader
from connectors.venues.market_cache import instrument_for
from models.instrument import Instrument
from models.quote_engine import ModelFallbacks
from models.quote_session import QuoteSessionOptions, UntradedInstrument, build_quote_session

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class TradingOptions:
    strategy: str
    params: Mapping[str, str] = field(default_factory=dict)
    max_inventory_lots: Decimal = Decimal(10)
    sample_interval_ms: float = 250.0
    horizon_end_ns: int | None = None
    fallbacks: ModelFallbacks | None = None
    top_of_book: bool = False
    requote_ms: float = 0.0
    paper: PaperSettings = field(default_factory=PaperSettings)

    def quoting(self) -> QuoteSessionOptions:
        """The quote session's options (validated: a bad strategy or parameter fails here)."""
        return QuoteSessionOptions(
            strategy=self.strategy,
            params=dict(self.params),
            max_inventory_lots=self.max_inventory_lots,
            fallbacks=self.fallbacks,
            top_of_book=self.top_of_book,
            requote_ms=self.requote_ms,
            horizon_end_ns=self.horizon_end_ns,
        )


class SessionRegistry:
    """Creates sessions on demand and keeps them so a run can report on them afterwards."""

    def __init__(
        self,
        options: TradingOptions,
        instruments: Callable[[str, str], Instrument] = instrument_for,
    ):
        self._quoting = options.quoting()  # fail before any data is read
        self._options = options
        self._instruments = instruments
        self.sessions: dict[str, PaperTrader] = {}
        self.untraded: dict[str, UntradedInstrument] = {}

    def __call__(self, key: str) -> PaperTrader | UntradedInstrument:
        venue, symbol = key.split(":", 1)
        try:
            instrument = self._instruments(venue, symbol)
        except KeyError as error:
            untraded = self.untraded[key] = UntradedInstrument(key, str(error.args[0]))
            return untraded
        options = self._options
        session = self.sessions[key] = PaperTrader(
            build_quote_session(instrument, self._quoting),
            instrument,
            options.paper,
            sample_interval_ns=round(options.sample_interval_ms * NS_PER_MS),
        )
        return session
