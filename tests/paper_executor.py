"""The executor on the paper venue over the start of a real recording (Binance spot BTCUSDT,
../shared/data), for the executor's in-process tests: the market, advanced on demand, and an
executor trading on it with its audit trail.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

from connectors.audit_store import AuditStore
from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.rate_limiter import AsyncRateLimiter
from connectors.paper.adapter import PaperVenueAdapter
from connectors.paper.market import PaperMarket
from connectors.paper.venue import PaperVenue
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import instrument_for
from models.events import DeadLetter, OrderIntent, Quote
from models.risk import RiskEngine, parse_limits
from tests.conftest import SHARED_DATA

SPOT_BTC = SHARED_DATA / "binance" / "spot" / "btcusdt_20240808.gz"
INSTRUMENT = instrument_for("binance", "BTC/USDT")


class Market:
    """The paper venue and an L2 book, advanced through the recording on demand."""

    def __init__(self) -> None:
        self.paper = PaperVenue([INSTRUMENT])
        self.adapter = PaperVenueAdapter(
            self.paper, "binance", AsyncRateLimiter.from_ccxt(0.01, capacity=100)
        )
        self.market = PaperMarket(self.paper, self.adapter, [INSTRUMENT])
        self.book = self.market.book("BTC/USDT")
        self._events = (e for e in Recordings([SPOT_BTC]).events() if not isinstance(e, DeadLetter))

    def advance(self, count: int) -> None:
        for event in itertools.islice(self._events, count):
            self.market.apply(event)

    def settle(self) -> None:
        """Advance until every request in flight has reached the venue (its latency)."""
        while self.paper.in_flight:
            self.advance(1)

    @property
    def mid(self) -> Decimal:
        return (self.book.best_bid()[0] + self.book.best_ask()[0]) / 2

    def intent(self, intent_id: str, bid_ticks: int = 50, ask_ticks: int = 50,
               size: str = "0.001", ts: int | None = None) -> OrderIntent:
        now = self.paper.now_ns if ts is None else ts
        bid = self.book.best_bid()[0] - bid_ticks * INSTRUMENT.tick_size
        ask = self.book.best_ask()[0] + ask_ticks * INSTRUMENT.tick_size
        return OrderIntent(
            intent_id=intent_id, venue="binance", symbol="BTC/USDT", ts=now, strategy="test",
            bids=[Quote(bid, Decimal(size))], asks=[Quote(ask, Decimal(size))],
            reference_mid=self.mid, trigger_receive_ts=now,
        )


def paper_executor(market: Market, tmp_path, limits=None, **config):
    """An executor on the market's paper venue, its clock the venue's, its trail
    `tmp_path/audit.jsonl`; (the executor, what it emitted, its audit store)."""
    emitted: list = []
    store = AuditStore(tmp_path / "audit.jsonl", sync_every=0)
    executor = Executor(
        market.adapter, [INSTRUMENT], RiskEngine(parse_limits(limits or {})),
        emit=emitted.append, clock=lambda: market.paper.now_ns, audit=store,
        config=ExecutorConfig(**config),
    )
    return executor, emitted, store


def audit_trail(tmp_path) -> list[dict]:
    """The records of the trail `paper_executor` wrote under `tmp_path`."""
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def open_at_venue(market: Market) -> set[str]:
    """The client ids of the orders open at the paper venue."""
    return {o["clientOrderId"] for o in market.paper.fetch_open_orders()}
