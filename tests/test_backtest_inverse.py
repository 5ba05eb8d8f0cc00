"""A backtest of Binance's COIN-M ETHUSD perpetual (inverse): the quote flow on the real
recording against the paper venue, with sizes in contracts of 10 USD and PnL and fees in ETH.

Runs the Bytewax dataflow in-process, as tests/test_backtest.py does for spot and USD-M.
"""

from decimal import Decimal

import pytest

from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import instrument_for
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA

COINM_ETH = SHARED_DATA / "binance/cm/ethusd_perp_20240808.gz"
KEY = "binancecoinm:ETH/USD:ETH"
ETH = instrument_for("binancecoinm", "ETH/USD:ETH")


@pytest.fixture(scope="module")
def coinm(shared_data):
    recordings = Recordings([COINM_ETH])
    options = TradingOptions(strategy="glft")
    outcome = run_paper_trading(recordings.events(), options)
    return outcome, recordings.stats(), options


def test_the_recording_replays_whole_and_trades(coinm):
    outcome, stats, _ = coinm
    assert stats["dead_letter_reasons"] == {}
    assert outcome.summary["events"] == stats["lines"] == 40_454
    assert set(outcome.registry.sessions) == {KEY}
    assert outcome.summary["instruments"][KEY]["fills"] > 10


def test_fills_are_whole_contracts_with_fees_in_eth(coinm):
    outcome, _, _ = coinm
    fills = outcome.results.fills[KEY]
    for fill in fills:
        assert fill.size == fill.size.to_integral_value() and fill.size >= 1
        assert fill.price % ETH.tick_size == 0 and fill.fee_currency == "ETH"
        rate = ETH.maker_fee if fill.liquidity == "maker" else ETH.taker_fee
        # The fee is the rate on the fill's value in ETH: contracts · 10 USD / price.
        value = (fill.size * 10 / fill.price).quantize(Decimal("1e-12"))
        assert fill.fee == value * rate


def test_pnl_in_eth_reconciles_exactly_with_fills_and_fees(coinm):
    outcome, _, _ = coinm
    session = outcome.registry.sessions[KEY]
    ledger = session.ledger
    fills = outcome.results.fills[KEY]
    signed = [(f.size if f.side == "buy" else -f.size) for f in fills]
    assert ledger.quantity == sum(signed, Decimal(0))
    # Long contracts lose coin value as the price rises: a buy's value comes in, a sell's
    # goes out (docs/pnl.md), each size·10/price to 1e-12 ETH.
    cash = sum((ETH.settle_value(f.price, f.size) * (1 if s > 0 else -1)
                for s, f in zip(signed, fills, strict=True)), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    assert ledger.fees == fees
    mark = session.last_mid
    held = ETH.settle_value(mark, abs(ledger.quantity)) * (1 if ledger.quantity > 0 else -1)
    pnl = ledger.realized_pnl + ledger.unrealized(mark) - ledger.fees
    assert pnl == cash - fees - held
    # The same in the textbook form, with no rounding at all, to the 1e-12 ETH grid per fill.
    exact = sum((s * 10 / f.price for s, f in zip(signed, fills, strict=True)), Decimal(0))
    exact -= ledger.quantity * 10 / mark
    assert abs(pnl - (exact - fees)) <= Decimal("1e-12") * (len(fills) + 1)


def test_inventory_is_capped_in_contracts(coinm):
    outcome, _, options = coinm
    summary = outcome.summary["instruments"][KEY]
    cap = options.max_inventory_lots * ETH.default_order_size
    assert abs(Decimal(str(summary["max_abs_inventory"]))) <= cap
