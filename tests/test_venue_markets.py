"""Trading rules from ccxt market structures: the cache, the conversion, and the refresh.

The refresh runs ccxt's real `load_markets()`; live exchanges are unreachable here, so the
successful refresh is shown against tests/ccxt_standin.py (a stand-in for Binance spot's REST
API), and the CLI is shown failing cleanly against the real, unreachable, exchange.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from connectors.venues.market_cache import (
    MarketsError,
    UnknownInstrumentError,
    all_instruments,
    instrument_for,
    instruments,
    refresh_markets,
)
from models.instrument import (
    CCXT_DECIMAL_PLACES,
    InstrumentRuleError,
    instrument_from_market,
)
from quoteflow.cli import app
from tests.ccxt_standin import BinanceSpotStandIn

D = Decimal

# Shaped as ccxt's binancecoinm gives ETHUSD_PERP after load_markets() (floats, as ccxt).
COINM_MARKET = {
    "id": "ETHUSD_PERP", "symbol": "ETH/USD:ETH", "base": "ETH", "quote": "USD",
    "settle": "ETH", "type": "swap", "spot": False, "swap": True, "contract": True,
    "linear": False, "inverse": True, "contractSize": 10.0,
    "precision": {"amount": 1.0, "price": 0.01},
    "limits": {"amount": {"min": 1.0, "max": 1000000.0}, "cost": {"min": None}},
    "maker": 0.0001, "taker": 0.0005, "info": {"pair": "ETHUSD"},
}


def test_a_ccxt_inverse_market_becomes_an_inverse_instrument():
    eth = instrument_from_market("binancecoinm", COINM_MARKET)
    assert (eth.symbol, eth.base, eth.quote, eth.settle_currency) == (
        "ETH/USD:ETH", "ETH", "USD", "ETH")
    assert (eth.tick_size, eth.step_size, eth.min_qty, eth.min_notional) == (
        D("0.01"), D("1"), D("1"), D("0"))
    assert eth.inverse and eth.contract_size == D("10") and eth.fee_currency == "ETH"
    assert (eth.maker_fee, eth.taker_fee) == (D("0.0001"), D("0.0005"))
    # 3 contracts of 10 USD: 30 USD of notional, 30/2500 ETH of value.
    assert eth.notional(D("2500"), D("3")) == D("30")
    assert eth.settle_value(D("2500"), D("3")) == D("0.012")
    assert eth.fee(D("2500"), D("3"), "taker") == D("0.012") * D("0.0005")
    assert eth.default_order_size == D("1")  # no order_sizes entry: the smallest order


def test_a_linear_spot_market_and_decimal_places_precision():
    market = {
        "symbol": "BTC/EUR", "base": "BTC", "quote": "EUR", "spot": True, "contract": False,
        "precision": {"amount": 8, "price": 1}, "limits": {"cost": {"min": 10}},
        "maker": 0.0016, "taker": 0.0026,
    }
    btc = instrument_from_market("kraken", market, precision_mode=CCXT_DECIMAL_PLACES)
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (D("0.1"), D("1e-8"), D("10"))
    assert not btc.inverse and btc.settle_currency == "EUR" and btc.contract_size == 1
    assert btc.notional(D("60000.1"), D("0.5")) == btc.settle_value(D("60000.1"), D("0.5"))


@pytest.mark.parametrize("broken", [
    {"precision": {"amount": 1.0}},  # no tick
    {"precision": {"amount": 1.0, "price": 0}},
    {"base": None, "quote": None},
])
def test_a_market_without_the_rules_is_refused(broken):
    with pytest.raises(InstrumentRuleError, match="BAD_MARKET"):
        instrument_from_market("binancecoinm", {**COINM_MARKET, **broken})


def test_the_cache_holds_the_recorded_instruments_with_their_rules():
    cached = all_instruments()
    assert {"binance:BTC/USDT", "binance:ETH/USDT", "binanceusdm:BTC/USDT:USDT",
            "binanceusdm:ETH/USDT:USDT", "binancecoinm:ETH/USD:ETH", "binancecoinm:BTC/USD:BTC",
            "sim:SIM/USD"} <= set(cached)
    perp = instrument_for("binanceusdm", "BTC/USDT:USDT")
    assert (perp.tick_size, perp.step_size, perp.min_notional) == (D("0.1"), D("0.001"), D(100))
    assert perp.default_order_size == D("0.01") and perp.settle_currency == "USDT"
    btc = instrument_for("binancecoinm", "BTC/USD:BTC")
    assert btc.contract_size == 100 and btc.inverse


def test_an_instrument_without_rules_is_a_one_line_error():
    with pytest.raises(UnknownInstrumentError, match=r"no trading rules for binance:DOGE/USDT; "
                       r"cached: binance:BTC/USDT, binance:ETH/USDT$"):
        instrument_for("binance", "DOGE/USDT")
    with pytest.raises(UnknownInstrumentError, match="no market cache for venue 'kraken'"):
        instrument_for("kraken", "BTC/USD")


def test_refresh_writes_the_cache_from_ccxt_load_markets(tmp_path):
    """ccxt's real binance class against the stand-in's exchangeInfo (spot only)."""
    (tmp_path / "binance.json").write_text(json.dumps(
        {"markets": {}, "order_sizes": {"BTC/USDT": "0.002"}}))

    async def refresh():
        async with BinanceSpotStandIn("k", "s", {"USDT": D(1000)}) as standin:
            config = {"urls": {"api": standin.ccxt_urls()["test"]},
                      "options": {"fetchMarkets": {"types": ["spot"]}}}
            return await asyncio.to_thread(
                refresh_markets, ["binance"], config=config, directory=tmp_path)

    (path,) = asyncio.run(refresh())
    cached = json.loads(path.read_text())
    assert cached["exchange"] == "binance" and "info" not in cached["markets"]["BTC/USDT"]
    btc = instruments("binance", tmp_path)["BTC/USDT"]
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (D("0.01"), D("0.00001"), D(5))
    assert btc.default_order_size == D("0.002")  # quoteflow's own size survives a refresh


def test_refresh_without_a_reachable_exchange_fails_cleanly(tmp_path):
    with pytest.raises(MarketsError, match=r"^kraken: cannot load markets from the exchange"):
        refresh_markets(["kraken"], config={"timeout": 2000}, directory=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("exchange", "message"), [
    ("binance", "binance: cannot load markets from the exchange"),
    ("mtgox", "unknown exchange 'mtgox'"),
])
def test_markets_refresh_command_exits_2_with_one_reason(exchange, message):
    result = CliRunner().invoke(app, ["markets", "refresh", "--exchange", exchange])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
