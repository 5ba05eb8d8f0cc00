"""The quote flow on the real Binance recordings, against the paper venue.

Runs the Bytewax dataflow in-process on the in-memory connectors (the embedded wiring).
"""

from decimal import Decimal
from itertools import islice

import pytest

from connectors.paper.trading import PaperSettings
from connectors.replay.recordings import Recordings
from models.events import Fill
from models.latency import ConstantLatency
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.causality import causality_violations
from tests.conftest import BINANCE_FILES, SHARED_DATA

SPOT_BTC = SHARED_DATA / "binance/spot/btcusdt_20240808.gz"
USDM_BTC = SHARED_DATA / "binance/usdm/btcusdt_20240808.gz"
SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
OPTIONS = TradingOptions(strategy="avellaneda-stoikov-infinite")


@pytest.fixture(scope="module")
def two_venues(shared_data):
    recordings = Recordings([SPOT_BTC, USDM_BTC])
    outcome = run_paper_trading(recordings.events(), OPTIONS)
    return outcome, recordings.stats()


def test_every_recorded_line_reaches_the_flow(two_venues):
    outcome, stats = two_venues
    assert outcome.summary["events"] == stats["lines"]
    assert set(outcome.registry.sessions) == {"binance:BTC/USDT", "binanceusdm:BTC/USDT:USDT"}


def test_both_instruments_trade(two_venues):
    outcome, _ = two_venues
    for key, summary in outcome.summary["instruments"].items():
        assert summary["fills"] > 0, key
        assert summary["book"]["applied"] > 0, key


def test_position_is_the_sum_of_fills_and_pnl_reconciles(two_venues):
    outcome, _ = two_venues
    for key, session in outcome.registry.sessions.items():
        fills: list[Fill] = outcome.results.fills[key]
        signed = [(f.size if f.side == "buy" else -f.size) for f in fills]
        assert session.ledger.quantity == sum(signed, Decimal(0))
        mark = session.last_mid
        cash = -sum((s * f.price for s, f in zip(signed, fills, strict=True)), Decimal(0))
        fees = sum((f.fee for f in fills), Decimal(0))
        assert session.ledger.fees == fees
        pnl = session.ledger.realized_pnl + session.ledger.unrealized(mark) - session.ledger.fees
        assert pnl == cash - fees + session.ledger.quantity * mark


def test_intents_are_on_the_grid_and_never_cross(two_venues):
    outcome, _ = two_venues
    for key, intents in outcome.results.intents.items():
        instrument = outcome.registry.sessions[key].instrument
        for intent in intents:
            for quote in intent.bids + intent.asks:
                assert quote.price % instrument.tick_size == 0
                assert quote.size % instrument.step_size == 0
                assert quote.price * quote.size >= instrument.min_notional
            if intent.bids and intent.asks:
                assert intent.bids[0].price < intent.asks[0].price


def test_inventory_stays_within_the_limit(two_venues):
    outcome, _ = two_venues
    for session in outcome.registry.sessions.values():
        order_size = Decimal(str(session.quoting.engine.strategy.order_size))
        limit = order_size * OPTIONS.max_inventory_lots
        assert session.max_abs_inventory <= limit


def test_maker_fills_happen_at_our_quoted_prices(two_venues):
    outcome, _ = two_venues
    for key, fills in outcome.results.fills.items():
        quoted = {q.price for i in outcome.results.intents[key] for q in i.bids + i.asks}
        assert {f.price for f in fills if f.liquidity == "maker"} <= quoted


def test_results_do_not_depend_on_chunking(shared_data):
    def run(chunk_size):
        outcome = run_paper_trading(Recordings([SPOT_ETH]).events(), OPTIONS, chunk_size=chunk_size)
        summary = dict(outcome.summary)
        summary.pop("wall_seconds")
        summary.pop("events_per_second")
        return summary, [i.intent_id for i in outcome.results.intents["binance:ETH/USDT"]]

    assert run(1) == run(4096)


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", [f for f in BINANCE_FILES if f.parent.name in ("spot", "usdm")],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_fill_comes_from_market_activity_after_its_order_arrived(path):
    """The fidelity rule, checked by an independent replay (tests/causality.py)."""
    options = TradingOptions(strategy="glft", params={"gamma": "0.01"})
    outcome = run_paper_trading(Recordings([path]).events(), options)
    fills = [f for per in outcome.results.fills.values() for f in per]
    assert fills, "the run should trade"
    assert causality_violations([path], fills) == []


def test_fills_on_one_taker_order_and_a_crossed_touch_stay_causal_with_zero_latency(shared_data):
    """With no latency at all the venue still keeps its 1 ns floor: a requote on the first
    print of a taker order cannot be filled by the rest of it."""
    zero = PaperSettings(latency=ConstantLatency(entry_ns=0, cancel_ns=0, response_ns=0))
    options = TradingOptions(strategy="glft", params={"gamma": "0.01"}, paper=zero)
    outcome = run_paper_trading(Recordings([SPOT_BTC]).events(), options)
    fills = [f for per in outcome.results.fills.values() for f in per]
    assert fills
    assert causality_violations([SPOT_BTC], fills) == []


def test_fixed_requote_cadence_quotes_only_on_its_boundaries(shared_data):
    options = TradingOptions(strategy="glft", params={"gamma": "0.01"}, requote_ms=100)
    events = list(islice(Recordings([SPOT_BTC]).events(), 20_000))
    outcome = run_paper_trading(events, options)
    intents = outcome.results.intents["binance:BTC/USDT"]
    assert intents
    assert all(i.ts % 100_000_000 == 0 for i in intents)
    assert all(i.trigger_receive_ts == i.ts for i in intents)
