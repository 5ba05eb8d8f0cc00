"""The exchange's own self-trade prevention on every order, as venue data, through ccxt.

Live exchanges are not reachable from the test machines, so the order goes to
`tests/ccxt_standin.py`, a local stand-in for Binance spot's REST API that checks the
`selfTradePreventionMode` parameter as Binance does (one of NONE, EXPIRE_TAKER, EXPIRE_MAKER,
EXPIRE_BOTH; the symbol's default EXPIRE_MAKER when absent) and reports it back on the order.
ccxt's own request building and signing run for real against it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from connectors.execution.config import ExecuteConfig
from connectors.execution.live import CcxtVenue
from connectors.execution.venue import NewOrder
from connectors.secrets import ExchangeCredentials
from connectors.venues import order_params, venue_for
from tests.ccxt_standin import BinanceSpotStandIn

API_KEY, SECRET = "standin-key-4f2a", "standin-secret-9c1e77"
START = {"BTC": Decimal("1"), "USDT": Decimal("100000")}


def test_each_exchange_declares_its_own_parameter_and_values():
    assert order_params("binance", "taker") == {"selfTradePreventionMode": "EXPIRE_TAKER"}
    assert order_params("binanceusdm", "both") == {"selfTradePreventionMode": "EXPIRE_BOTH"}
    assert order_params("okx", "maker") == {"stpMode": "cancel_maker"}
    assert order_params("bybit", "taker") == {"smpType": "CancelTaker"}
    assert order_params("kucoin", "both") == {"stp": "CB"}
    assert order_params("kraken", "taker") == {"stptype": "cancel-newest"}
    # No per-order mode known (ccxt's coinbase is Advanced Trade): nothing is sent.
    assert venue_for("coinbase").self_trade_prevention is None
    assert order_params("coinbase", "taker") == {}
    assert order_params("binance", "off") == {}
    with pytest.raises(ValueError, match="one of"):
        order_params("coinbase", "newest")


def test_the_mode_is_configured_and_a_wrong_one_refused():
    assert ExecuteConfig(symbols=["BTC/USDT"]).self_trade_prevention == "taker"
    with pytest.raises(ValueError, match=r"execute\.self_trade_prevention must be one of"):
        ExecuteConfig(symbols=["BTC/USDT"], self_trade_prevention="cancel-newest")


@pytest.mark.parametrize(("mode", "sent"), [
    ("taker", "EXPIRE_TAKER"), ("both", "EXPIRE_BOTH"), ("off", "EXPIRE_MAKER"),
])
def test_the_ccxt_adapter_sends_the_exchanges_mode_with_every_order(mode, sent):
    async def scenario():
        async with BinanceSpotStandIn(API_KEY, SECRET, START) as standin:
            venue = await CcxtVenue.connect(
                "binance", ExchangeCredentials(API_KEY, SECRET), sandbox=True,
                config=standin.ccxt_config(),
                capacity=20, order_params=order_params("binance", mode),
            )
            try:
                await venue.create_order(NewOrder(
                    "qfstp1", "BTC/USDT", "buy", Decimal("0.001"), Decimal("59000.01")))
                # "off" names no mode: the exchange applies the symbol's default.
                assert standin.orders_by_client("qfstp1").self_trade_prevention == sent
            finally:
                await venue.close()

    asyncio.run(scenario())
