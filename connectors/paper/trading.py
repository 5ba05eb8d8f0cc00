"""One instrument traded on the paper venue through the production executor.

The per-instrument state of `quoteflow run` and `quoteflow backtest`: the same
`QuoteSession` that quotes in the Kafka quote flow, the same `Executor` (order diff, pre-
and post-trade risk, rate limiter, deterministic client order ids, reconciliation) that
`quoteflow execute` runs, and the paper venue on the market's clocks. Only the transport
differs: intents go straight from the session to the executor, and the fills the executor
emits go straight back to the session, at the local time our side hears of them.

For each market event, in this order:
1. with a fixed requote cadence, the boundary before it: responses heard by then reach the
   executor and the session, which quotes on the state at that boundary;
2. the exchange side: requests that reached the matching engine before the event's exchange
   time arrive, then the event updates the venue's book and matches (`PaperMarket`);
3. the local side: what we have heard by the event's receive time reaches the executor
   (`pump`), its fills the session; then the session sees the event and may quote, and the
   executor acts on the intent.

The executor is asyncio code; nothing in it waits here (the venue answers at once and the
rate limiter delays requests on the simulated clock instead of sleeping), so each call runs
to completion on a private event loop (`connectors.paper.inline_loop`, without the loop's
idle turns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.rate_limiter import SimulatedRateLimiter
from connectors.execution.reconcile import reconcile
from connectors.execution.venue import Venue
from connectors.paper.adapter import PaperVenueAdapter
from connectors.paper.inline_loop import InlineLoop
from connectors.paper.market import PaperMarket
from connectors.paper.venue import PaperVenue
from models.events import Event, Fill, Level, MarketEvent, OrderEvent, OrderIntent, RiskEvent
from models.execution.plan import UNIT_COSTS, RequestCosts
from models.instrument import Instrument
from models.latency import LatencyModel
from models.markouts import MarkoutTracker
from models.queue_model import QueueFactory, RiskAverseQueue
from models.quote_session import QuoteSession
from models.risk import RiskEngine, RiskLimits

NS_PER_MS = 1_000_000
_SHUTDOWN_ATTEMPTS = 5


@dataclass(frozen=True)
class PaperSettings:
    """How the paper venue simulates the exchange (docs/paper-venue.md)."""

    latency: LatencyModel | None = None  # None: the venue's default (docs/paper-venue.md)
    queue_model: QueueFactory = RiskAverseQueue
    partial_fills: bool = True
    # The venue's request budget, as `[execute]` sets it for `quoteflow execute`: one unit
    # of request cost per `rate_limit_ms` (ccxt's rateLimit), a bucket of `capacity` units.
    rate_limit_ms: float = 50.0
    rate_limit_capacity: float = 1.0
    reconcile_interval_ms: float = 30_000.0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    risk_limits: RiskLimits | None = None


class _UnrecordedAudit:
    """A backtest's audit goes nowhere: its fills file and report are its record."""

    discards = True  # the executor skips making its records

    @staticmethod
    def append(ts, actor, action, payload) -> None:
        return None


_run = InlineLoop().run


class PaperTrader:
    def __init__(
        self,
        quoting: QuoteSession,
        instrument: Instrument,
        settings: PaperSettings,
        *,
        sample_interval_ns: int = 250 * NS_PER_MS,
        audit=None,
        costs: RequestCosts = UNIT_COSTS,
        limiter: Callable[[Callable[[], int]], object] | None = None,
        wrap_venue: Callable[[PaperVenueAdapter], Venue] | None = None,
        on_intent: Callable[[OrderIntent], None] | None = None,
    ) -> None:
        """`audit` (an `AuditStore`) keeps the executor's audit chain (default: none);
        `limiter(clock)` builds another rate limiter on the venue's clock, `wrap_venue`
        wraps the adapter (fault injection, timing) and `on_intent` sees each intent before
        the executor does."""
        self.quoting = quoting
        self.instrument = instrument
        self.venue = PaperVenue(
            [instrument], latency=settings.latency, queue_model=settings.queue_model,
            partial_fills=settings.partial_fills,
        )
        clock = self.venue.local_now
        self.limiter = limiter(clock) if limiter is not None else SimulatedRateLimiter.from_ccxt(
            settings.rate_limit_ms, clock, settings.rate_limit_capacity
        )
        self.adapter = PaperVenueAdapter(self.venue, instrument.venue, self.limiter, costs)
        # The session's book is the venue's too: both see the same events, applied once.
        self.market = PaperMarket(
            self.venue, self.adapter, [instrument], books={instrument.symbol: quoting.book}
        )
        self._out: list[Event] = []
        self._on_intent = on_intent
        self.executor = Executor(
            self.adapter if wrap_venue is None else wrap_venue(self.adapter),
            [instrument], RiskEngine(settings.risk_limits),
            emit=self._collect, config=settings.executor, clock=clock,
            audit=_UnrecordedAudit() if audit is None else audit,
        )
        self.ledger = self.executor.ledgers[instrument.key]
        self.markouts = MarkoutTracker()
        self.counts: Counter[str] = Counter()
        self.max_abs_inventory = Decimal(0)
        # The touch of the last event that had two sides; its mid is made only when read.
        self._mid_bid: Level | None = None
        self._mid_ask: Level | None = None
        self._mid: Decimal | None = None
        self._symbol, self._venue_id = instrument.symbol, instrument.venue
        self._sample_interval_ns = sample_interval_ns
        self._next_sample_ns = 0
        self._reconcile_every_ns = round(settings.reconcile_interval_ms * NS_PER_MS)
        self._next_reconcile_ns = 0
        self._last_ts = 0
        self._last_fill_ts = 0

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def last_mid(self) -> Decimal | None:
        """The mid of the latest event that showed a two-sided book (None before one)."""
        mid = self._mid
        if mid is None and self._mid_bid is not None:
            # The book's `mid()` as it was then: most events move the touch and nothing reads
            # their mid (markouts not due, no position sample), so it is made on demand.
            mid = self._mid = (self._mid_bid[0] + self._mid_ask[0]) / 2
        return mid

    def on_event(self, event) -> list[Event]:
        if not isinstance(event, MarketEvent):
            # Predictions (the skew) go to the session as on Kafka; it quotes at the next
            # book change.
            self._act(self.quoting.on_event(event))
            return self._flush()
        ts = event.receive_ts
        quoting = self.quoting
        boundary = quoting.boundary_before(ts)
        if boundary is not None:
            self.market.advance_local(boundary)  # what we had heard by the boundary
            self._take_reports()
            self._act(quoting.on_timer(ts))
        if event.symbol != self._symbol or event.venue != self._venue_id:
            return self._flush()
        market = self.market
        market.arrive_before(event)
        changed = quoting.observe(event)
        book = quoting.book
        market.match(event, book, changed)
        if self.adapter.has_events:
            _run(self._hear_then_quote(event, changed))  # one pass of the loop for both
        else:
            intents = quoting.requote(event, changed)
            if intents:
                _run(self._act_on(intents))
        self._last_ts = ts
        if changed:
            bid, ask = book.bid, book.ask
            has_mid = bid is not None and ask is not None
            if has_mid:
                self._mid_bid, self._mid_ask, self._mid = bid, ask, None
        else:
            has_mid = self._mid_bid is not None
        if has_mid:
            # Markouts on the exchange clock, the clock of the fills they mark: the recorder's
            # clock can run a second or more apart, which would stretch every horizon.
            markouts = self.markouts
            if event.exchange_ts >= markouts.next_due_ns:
                markouts.on_mid(event.exchange_ts, self.last_mid)
            if ts >= self._next_sample_ns:
                self._next_sample_ns = ts + self._sample_interval_ns
                self._out.append(self.ledger.position(ts, self.last_mid))
        if ts >= self._next_reconcile_ns:
            self._next_reconcile_ns = ts + self._reconcile_every_ns
            start = len(self._out)
            _run(reconcile(self.executor))
            self._feed_back(start)
        out = self._out
        if out:
            self._out = []
        return out

    def close(self) -> list[Event]:
        """Pull every quote, let the last requests arrive, report the final position.

        A cancel that failed (a venue wrapper's injected fault) is tried again, a few times.
        """
        for _ in range(_SHUTDOWN_ATTEMPTS):
            start = len(self._out)
            _run(self.executor.shutdown())
            self.market.finish()
            _run(self._drain())
            self._feed_back(start)
            if not self.venue.fetch_open_orders():
                break
        if self.last_mid is not None:
            self._out.append(self.ledger.position(self._last_ts, self.last_mid))
        return self._flush()

    async def _drain(self) -> None:
        """What a venue wrapper still holds back, and the venue's last events."""
        executor = self.executor
        await executor.pump()
        flush = getattr(executor.venue, "flush", None)
        if flush is not None:
            for event in flush():
                if isinstance(event, Fill):
                    executor.apply_fill(event, "push")
                else:
                    executor.apply_order_event(event)

    def _take_reports(self) -> None:
        """Hand the executor what our side has heard; its fills go on to the session."""
        if self.adapter.has_events:
            start = len(self._out)
            _run(self.executor.pump())
            self._feed_back(start)

    async def _hear_then_quote(self, event, changed: bool) -> None:
        executor = self.executor
        start = len(self._out)
        await executor.pump()
        self._feed_back(start)
        await self._act_on(self.quoting.requote(event, changed))

    def _announce(self, intents: list[OrderIntent]) -> list[OrderIntent]:
        for intent in intents:
            if self._on_intent is not None:
                self._on_intent(intent)
            self._out.append(intent)
        return intents

    def _act(self, intents: list[OrderIntent]) -> None:
        if intents:
            _run(self._act_on(intents))

    async def _act_on(self, intents: list[OrderIntent]) -> None:
        executor = self.executor
        for intent in self._announce(intents):
            start = len(self._out)
            await executor.on_intent(intent)
            self._feed_back(start)

    def _feed_back(self, start: int) -> None:
        """The executor's output since `start`: fills to the session, counts and markouts."""
        out = self._out
        for i in range(start, len(out)):
            event = out[i]
            kind = type(event)
            if kind is Fill:
                self.counts["fills"] += 1
                self.quoting.on_event(event)
                self.max_abs_inventory = max(self.max_abs_inventory, abs(self.ledger.quantity))
                if self.last_mid is not None:
                    if event.ts < self._last_fill_ts:
                        # Heard out of order (a venue wrapper reordered it): marked from now.
                        event = msgspec.structs.replace(event, ts=self._last_fill_ts)
                    self._last_fill_ts = event.ts
                    self.markouts.on_fill(event, self.last_mid)
            elif kind is OrderEvent:
                self.counts[f"order_{event.kind}"] += 1
            elif kind is RiskEvent:
                self.counts[f"risk_{event.kind}"] += 1

    def _collect(self, event: Event) -> None:
        self._out.append(event)

    def _flush(self) -> list[Event]:
        out = self._out
        if out:
            self._out = []
        return out

    def book_counts(self) -> Counter[str]:
        book = self.quoting.book.l2
        return Counter() if book is None else Counter(book.stats.as_dict())
