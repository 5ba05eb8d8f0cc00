"""Long seeded runs of the executor under injected faults, driven by real market data.

Binance USD-M BTCUSDT (hftbacktest's recording, ../shared/data) goes through the backtest's
per-instrument state (`PaperTrader`: the production quote session and executor, the paper
venue on the market's clocks), with the paper venue behind a
`FaultyVenue` injecting timeouts before and after processing, HTTP 429 (with Retry-After),
5xx, DDoS protection, rejects, and duplicated, reordered and delayed order events; the
paper venue's own queue model produces the partial fills. After each run:

- no orphan orders: every order open at the venue was known to the executor at every
  reconciliation, and after shutdown nothing is open;
- the position equals the sum of the venue's fills exactly, and each fill counted once;
- cash reconciles: the venue's balances equal what the fills and fees imply, to the digit;
- the audit chain verifies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from connectors.audit_store import AuditStore, verify_audit
from connectors.execution.executor import ExecutorConfig
from connectors.execution.faults import FaultRates, FaultyVenue
from connectors.execution.retry import RetryPolicy
from connectors.paper.trading import PaperSettings, PaperTrader
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import instrument_for
from models.events import DeadLetter, OrderEvent, OrderIntent
from models.execution.plan import UNIT_COSTS, RequestCosts
from models.execution.reconcile import compare_balances, expected_balances
from models.latency import ConstantLatency
from models.order_diff import Tolerance
from models.quote_session import build_quote_session
from models.risk import parse_limits
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA

USDM_BTC = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
KEY = "binanceusdm:BTC/USDT:USDT"
HARSH = FaultRates(
    timeout_before=0.04, lost_answer=0.06, rate_limited=0.03, unavailable=0.03, ddos=0.02,
    reject=0.05, duplicate_event=0.1, delay_event=0.1, shuffle_batch=0.3,
)
LIMITS = parse_limits({
    "max_position": "0.2", "price_band_bps": "50", "max_open_orders": 8,
    "max_data_age_ms": 5000,
})


@dataclass
class Outcome:
    events: int = 0
    intents: int = 0
    emitted: Counter = field(default_factory=Counter)
    untracked_open: set = field(default_factory=set)  # per check: open orders we did not know


def _run(
    tmp_path, seed: int, max_events: int | None, strategy: str, tolerance: Tolerance,
    costs: RequestCosts = UNIT_COSTS,
):
    audit_path = tmp_path / f"audit-{seed}.jsonl"
    store = AuditStore(audit_path, sync_every=0)
    faults: list[FaultyVenue] = []

    def wrap(adapter):
        faults.append(FaultyVenue(adapter, seed, HARSH))
        return faults[0]

    paper = PaperSettings(
        latency=ConstantLatency.from_ms(3, 3, 2), rate_limit_ms=0.01, rate_limit_capacity=100,
        risk_limits=LIMITS,
        executor=ExecutorConfig(
            tolerance=tolerance, retry=RetryPolicy(attempts=8, base_delay_s=0.0),
        ),
    )
    instrument = instrument_for("binanceusdm", "BTC/USDT:USDT")
    trader = PaperTrader(
        build_quote_session(instrument, TradingOptions(strategy=strategy).quoting()),
        instrument, paper, audit=store, costs=costs, wrap_venue=wrap,
    )
    outcome = Outcome()

    def count(events) -> None:
        for event in events:
            kind = getattr(event, "kind", None) if type(event) is OrderEvent else None
            outcome.emitted[type(event).__name__ + (f":{kind}" if kind else "")] += 1
            outcome.intents += type(event) is OrderIntent

    for event in Recordings([USDM_BTC]).events():
        if isinstance(event, DeadLetter):
            continue
        count(trader.on_event(event))
        outcome.events += 1
        if outcome.events % 2000 == 0:
            tracked = {order.client_order_id for order in trader.executor.tracker}
            outcome.untracked_open.add(sum(
                o["clientOrderId"] not in tracked for o in trader.venue.fetch_open_orders()
            ))
        if max_events is not None and outcome.events >= max_events:
            break
    count(trader.close())
    store.close()
    return trader, outcome, faults[0], audit_path


def _assert_consistent(trader, outcome, faulty, audit_path):
    paper, executor = trader.venue, trader.executor
    ledger = executor.ledgers[KEY]
    assert paper.fetch_open_orders() == [], "orders left open at the venue after shutdown"
    assert outcome.untracked_open == {0}, "an open order at the venue was unknown to us"
    assert len(executor.tracker) == 0, list(executor.tracker)

    venue_fills = paper.fetch_my_trades(trader.instrument.symbol)
    assert venue_fills, "the run should trade"
    signed = sum(
        (t["amount"] if t["side"] == "buy" else -t["amount"] for t in venue_fills), Decimal(0)
    )
    assert ledger.quantity == signed
    assert ledger.fees == sum((t["fee"]["cost"] for t in venue_fills), Decimal(0))
    assert trader.quoting.inventory == signed  # the quote session heard each fill once
    assert outcome.emitted["Fill"] == len(venue_fills)

    balances = {k: v for k, v in paper.fetch_balance()["total"].items()}
    assert compare_balances(expected_balances({}, [ledger]), balances) == {}

    result = verify_audit(audit_path)
    assert result.ok, str(result)
    assert result.records > outcome.intents

    # The faults did happen, and the paper venue's queue model split orders.
    for fault in ("timeout_before", "lost_answer", "rate_limited", "unavailable",
                  "duplicated_event", "delayed_event", "shuffled_batch"):
        assert faulty.counts[fault] > 0, fault
    assert outcome.emitted["OrderEvent:partial_fill"] > 0


@pytest.mark.slow
def test_a_whole_recording_under_faults_leaves_nothing_behind(tmp_path, shared_data):
    trader, outcome, faulty, audit_path = _run(
        tmp_path, seed=20240808, max_events=90_000, strategy="avellaneda-stoikov-infinite",
        tolerance=Tolerance(),
    )
    _assert_consistent(trader, outcome, faulty, audit_path)
    assert outcome.events >= 90_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "strategy"), [(1, "glft"), (2, "avellaneda-stoikov"), (3, "glft")]
)
def test_seeded_runs_with_cancel_replace_and_tolerance(tmp_path, shared_data, seed, strategy):
    # An amend that costs as much as a cancel and a new order is not worth it: every change
    # is a cancel/replace, so creates (and their ambiguous failures) are many.
    trader, outcome, faulty, audit_path = _run(
        tmp_path, seed=seed, max_events=40_000, strategy=strategy,
        tolerance=Tolerance(price=Decimal("0.5"), size_fraction=Decimal("0.1")),
        costs=RequestCosts(amend=2.0),
    )
    _assert_consistent(trader, outcome, faulty, audit_path)
    assert faulty.counts["reject"] > 0
    assert outcome.emitted["OrderEvent:amend"] == 0
    assert outcome.emitted["OrderEvent:cancel"] > 0
