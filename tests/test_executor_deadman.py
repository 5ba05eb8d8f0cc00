"""The exchange-side dead-man's switch (connectors/execution/deadman.py), through ccxt.

Live exchanges are unreachable from here, so the venue is `tests/ccxt_standin.py`, a local
stand-in for Binance's REST API: its USD-M `POST /fapi/v1/countdownCancelAll` checks the HMAC
signature like every private endpoint and, when a countdown runs out, cancels the open orders
of its symbol. ccxt's `binanceusdm` class signs and sends the calls for real.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt_async
import pytest

from connectors.execution.deadman import DEADMAN_CALLS, DeadManSwitch
from connectors.execution.live import CcxtVenue
from connectors.execution.venue import NewOrder
from connectors.secrets import ExchangeCredentials
from tests.ccxt_standin import BinanceUsdmStandIn

ROOT = Path(__file__).resolve().parents[1]
API_KEY, SECRET = "standin-key-7d3b", "standin-secret-51aa90"
START = {"USDT": Decimal("100000")}
PERP = "BTC/USDT:USDT"


async def _venue(standin: BinanceUsdmStandIn, timeout_s: float) -> CcxtVenue:
    return await CcxtVenue.connect(
        "binanceusdm", ExchangeCredentials(API_KEY, SECRET), sandbox=True,
        config={"urls": standin.ccxt_urls()}, capacity=20,
        deadman_timeout_s=timeout_s, symbols=[PERP],
    )


def _order(client_order_id: str) -> NewOrder:
    return NewOrder(client_order_id, PERP, "buy", Decimal("0.002"), Decimal("59000.00"))


async def _until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def test_every_table_entry_is_a_method_of_that_ccxt_exchange():
    for exchange_id, call in DEADMAN_CALLS.items():
        exchange = getattr(ccxt_async, exchange_id)()
        assert callable(getattr(exchange, call.method, None)), (exchange_id, call.method)


def test_requests_carry_the_venues_units_and_ranges_are_enforced():
    assert DEADMAN_CALLS["binanceusdm"].request(60, "BTCUSDT") == {
        "countdownTime": 60_000, "symbol": "BTCUSDT"}
    assert DEADMAN_CALLS["okx"].request(30) == {"timeOut": 30}
    assert DEADMAN_CALLS["kraken"].request(0) == {"timeout": 0}
    with pytest.raises(ValueError, match=r"okx's dead-man's switch takes 10 to 120 s, not 5"):
        DeadManSwitch(ccxt_async.okx(), DEADMAN_CALLS["okx"], 5)


def test_a_venue_without_one_is_said_so(caplog):
    with caplog.at_level(logging.WARNING):
        assert DeadManSwitch.for_exchange(ccxt_async.binance(), 60, ["BTC/USDT"]) is None
    assert "binance has no exchange-side dead-man's switch" in caplog.text
    assert DeadManSwitch.for_exchange(ccxt_async.binanceusdm(), 0, [PERP]) is None  # off


def test_armed_at_connect_kept_alive_while_open_and_disarmed_by_close():
    async def scenario():
        async with BinanceUsdmStandIn(API_KEY, SECRET, START) as standin:
            venue = await _venue(standin, timeout_s=3)
            try:
                assert standin.countdown_calls == [("BTCUSDT", 3000)]
                await venue.create_order(_order("qfdm1"))
                # Twice the countdown: re-armed every second all along, so the order stays.
                await asyncio.sleep(6.5)
                assert standin.open_orders() == ["qfdm1"]
                assert len(standin.countdown_calls) >= 4
                assert set(standin.countdown_calls) == {("BTCUSDT", 3000)}
            finally:
                await venue.close()
            assert standin.countdown_calls[-1] == ("BTCUSDT", 0)
            assert standin.countdowns == {}
            await asyncio.sleep(3.5)  # past the last countdown: it was disarmed
            assert standin.open_orders() == ["qfdm1"] and standin.countdown_cancels == []

    asyncio.run(scenario())


_CHILD = """
import asyncio, sys
from decimal import Decimal
from connectors.execution.live import CcxtVenue
from connectors.execution.venue import NewOrder
from connectors.secrets import ExchangeCredentials

async def main(url_base):
    venue = await CcxtVenue.connect(
        "binanceusdm", ExchangeCredentials(sys.argv[1], sys.argv[2]), sandbox=True,
        config={"urls": {"test": {"fapiPublic": url_base, "fapiPrivate": url_base}}},
        capacity=20, deadman_timeout_s=float(sys.argv[4]), symbols=["BTC/USDT:USDT"])
    for name in ("qfkill1", "qfkill2"):
        await venue.create_order(NewOrder(name, "BTC/USDT:USDT", "buy", Decimal("0.002"),
                                          Decimal("59000.00")))
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[3]))
"""


def test_a_killed_executors_orders_are_cancelled_by_the_venue():
    """SIGKILL leaves no chance to cancel or disarm: the venue's countdown does it."""
    async def scenario():
        async with BinanceUsdmStandIn(API_KEY, SECRET, START) as standin:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _CHILD, API_KEY, SECRET, f"{standin.url}/fapi/v1", "5",
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=asyncio.subprocess.PIPE)
            try:
                line = await asyncio.wait_for(child.stdout.readline(), 60)
                assert line == b"ready\n"
                assert sorted(standin.open_orders()) == ["qfkill1", "qfkill2"]
            finally:
                child.send_signal(signal.SIGKILL)
                await child.wait()
            assert await _until(lambda: not standin.open_orders(), 10)
            assert sorted(standin.countdown_cancels) == ["qfkill1", "qfkill2"]
            assert standin.orders_by_client("qfkill1").status == "CANCELED"
            assert set(standin.countdown_calls) == {("BTCUSDT", 5000)}  # never disarmed

    asyncio.run(scenario())


def test_a_key_swap_leaves_the_switch_armed():
    """KeyedVenue connects the new key's venue (armed) before closing the old one, whose
    close disarms the account's countdown: the new venue arms it again at once."""
    from connectors.execution.keys import KeyedVenue, KeyInUse
    from models.execution.plan import UNIT_COSTS

    async def scenario():
        async with BinanceUsdmStandIn(API_KEY, SECRET, START) as standin:
            async def connect(credentials):
                return await _venue(standin, timeout_s=30)

            venue = KeyedVenue("binanceusdm", connect, UNIT_COSTS, supports_amend=False)
            credentials = ExchangeCredentials(API_KEY, SECRET)
            try:
                await venue.use(KeyInUse("k1", "stan…7d3b"), credentials)
                await venue.use(KeyInUse("k2", "stan…7d3b"), credentials)
                assert standin.countdown_calls == [
                    ("BTCUSDT", 30_000), ("BTCUSDT", 30_000), ("BTCUSDT", 0), ("BTCUSDT", 30_000)]
                assert "BTCUSDT" in standin.countdowns
            finally:
                await venue.close()
            assert standin.countdown_calls[-1] == ("BTCUSDT", 0) and not standin.countdowns

    asyncio.run(scenario())


def test_a_fenced_executors_close_leaves_the_switch_armed():
    """A fenced executor (a newer one took the account and armed the countdown) closes its
    venue with `disarm=False`: its keep-alive stops, nothing is sent, the countdown runs on."""
    from connectors.execution.keys import KeyedVenue, KeyInUse
    from models.execution.plan import UNIT_COSTS

    async def scenario():
        async with BinanceUsdmStandIn(API_KEY, SECRET, START) as standin:
            async def connect(credentials):
                return await _venue(standin, timeout_s=30)

            venue = KeyedVenue("binanceusdm", connect, UNIT_COSTS, supports_amend=False)
            await venue.use(KeyInUse("k1", "stan…7d3b"), ExchangeCredentials(API_KEY, SECRET))
            inner = venue._venue
            await venue.close(disarm=False)
            assert standin.countdown_calls == [("BTCUSDT", 30_000)]
            assert "BTCUSDT" in standin.countdowns
            assert inner._deadman_task.done() and venue.key is None

    asyncio.run(scenario())
