"""The quote flow on the real Binance recordings, against the paper venue.

Runs the Bytewax dataflow in-process on the in-memory connectors (the embedded wiring).
"""

from decimal import Decimal

import pytest

from connectors.replay.recordings import Recordings
from models.events import Fill
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA

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
        instrument = outcome.registry.sessions[key].engine.instrument
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
        limit = Decimal(str(session.engine.strategy.order_size)) * OPTIONS.max_inventory_lots
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
