"""Recorded market data through the quote engine, the executor and the paper venue.

The executor's counterpart of a backtest, used by the fault tests and the benchmark: each
recorded event updates the book and advances the paper venue (market-data clock), the
executor applies what the venue pushed, and a changed book gives the quote engine the chance
to emit an intent, which the executor acts on. The executor's clock is the venue's, so intent
ages and audit times are market time and a run is deterministic for a given fault seed.

After `max_events` the executor shuts down (cancel-all) and the replay goes on without
intents until the venue has no open order left, so the cancels in flight can arrive (with
order latency, leave some events after `max_events` for that).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.paper import PaperVenueAdapter
from connectors.execution.rate_limiter import AsyncRateLimiter
from connectors.execution.reconcile import reconcile
from connectors.execution.venue import Venue
from connectors.replay.recordings import Recordings
from models.audit import AuditRecord
from models.events import BookDelta, BookSnapshot, DeadLetter, Event, Fill, OrderIntent, Trade
from models.execution.plan import UNIT_COSTS, RequestCosts
from models.risk import RiskEngine, RiskLimits
from quoteflow.sessions import SessionRegistry, TradingOptions

_SHUTDOWN_RETRY_EVENTS = 1000


@dataclass
class ReplayOutcome:
    events: int = 0
    intents: int = 0
    emitted: Counter[str] = field(default_factory=Counter)
    reconciliations: int = 0
    differences: Counter[str] = field(default_factory=Counter)
    # Open orders at the venue that the executor did not track, at each check (should be 0).
    untracked_open: list[int] = field(default_factory=list)


class ExecutorReplay:
    def __init__(
        self,
        paths: Iterable[str | Path],
        instrument_key: str,
        options: TradingOptions,
        *,
        limiter: AsyncRateLimiter,
        risk_limits: RiskLimits | None = None,
        config: ExecutorConfig | None = None,
        costs: RequestCosts = UNIT_COSTS,
        wrap_venue: Callable[[PaperVenueAdapter], Venue] = lambda venue: venue,
        audit=None,
        on_audit: Callable[[AuditRecord], None] | None = None,
        on_intent: Callable[[OrderIntent], None] | None = None,
        reconcile_every_ns: int = 5_000_000_000,
    ) -> None:
        self._paths = list(paths)
        session = SessionRegistry(options)(instrument_key)
        self.engine, self.paper, self.book = session.engine, session.venue, session.book
        instrument = self.engine.instrument
        self.adapter = PaperVenueAdapter(self.paper, instrument.venue, limiter, costs)
        self.venue = wrap_venue(self.adapter)
        self.outcome = ReplayOutcome()
        self.executor = Executor(
            self.venue, [instrument], RiskEngine(risk_limits), emit=self._emitted,
            config=config, clock=lambda: self.paper.now_ns, audit=audit, on_audit=on_audit,
        )
        self._on_intent = on_intent
        self._reconcile_every_ns = reconcile_every_ns

    def _emitted(self, event: Event) -> None:
        kind = getattr(event, "kind", None)
        self.outcome.emitted[type(event).__name__ + (f":{kind}" if kind else "")] += 1
        if isinstance(event, Fill):
            self.engine.on_fill(event)

    async def run(self, max_events: int | None = None) -> ReplayOutcome:
        executor, outcome = self.executor, self.outcome
        await self._reconcile()
        next_reconcile = 0
        trading = True
        stopped_at = 0
        for event in Recordings(self._paths).events():
            if isinstance(event, DeadLetter):
                continue
            book_changed = isinstance(event, BookSnapshot | BookDelta)
            if book_changed:
                self.book.apply(event)
            self.adapter.on_market_event(event, self.book, book_changed=book_changed)
            await executor.pump()
            outcome.events += 1
            if trading:
                await self._quote(event, book_changed)
                if event.receive_ts >= next_reconcile:
                    next_reconcile = event.receive_ts + self._reconcile_every_ns
                    await self._reconcile()
                if max_events is not None and outcome.events >= max_events:
                    trading = False
                    stopped_at = outcome.events
                    await executor.shutdown()
            elif not self.paper.fetch_open_orders():
                break
            elif (outcome.events - stopped_at) % _SHUTDOWN_RETRY_EVENTS == 0:
                await executor.shutdown()  # a cancel that failed for good is tried again
        if trading:
            # The recording ended first: cancels still travelling need market events to land.
            await executor.shutdown()
        await self._drain()
        await self._reconcile()
        return outcome

    async def _quote(self, event, book_changed: bool) -> None:
        engine = self.engine
        if isinstance(event, Trade):
            bid, ask = self.book.best_bid(), self.book.best_ask()
            mid = None if bid is None or ask is None else float(bid[0] + ask[0]) / 2
            engine.on_trade(event, mid)
        if book_changed:
            intent = engine.on_book(event.receive_ts, self.book, event.receive_ts)
            if intent is not None:
                self.outcome.intents += 1
                if self._on_intent is not None:
                    self._on_intent(intent)
                await self.executor.on_intent(intent)

    async def _reconcile(self) -> None:
        report = await reconcile(self.executor)
        self.outcome.reconciliations += 1
        self.outcome.differences.update(report.differences)
        tracked = {order.client_order_id for order in self.executor.tracker}
        venue_open = self.paper.fetch_open_orders()
        untracked = [o for o in venue_open if o["clientOrderId"] not in tracked]
        self.outcome.untracked_open.append(len(untracked))

    async def _drain(self) -> None:
        """Whatever a fault wrapper still holds back, and the venue's last events."""
        flush = getattr(self.venue, "flush", None)
        await self.executor.pump()
        if flush is not None:
            for event in flush():
                if isinstance(event, Fill):
                    self.executor.apply_fill(event, "push")
                else:
                    self.executor.apply_order_event(event)
