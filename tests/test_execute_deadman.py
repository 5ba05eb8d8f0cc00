"""The exchange-side dead-man's switch of a whole `quoteflow execute` on a futures venue.

The executor trades Binance USD-M through ccxt's `binanceusdm` class with a short countdown
(`[execute] deadman_timeout_s`): armed at start-up, re-armed every third of it while the
process runs, disarmed after the shutdown's cancel-all; a SIGKILLed executor's orders are
cancelled by the exchange itself when the countdown runs out; a fenced executor leaves the
countdown armed, and its successor keeps re-arming it.

Live exchanges are unreachable from the test machines, so the venue is
`tests/ccxt_standin.py`'s `BinanceUsdmStandIn`, a local stand-in for Binance USD-M's REST API
(HMAC-signed requests, Binance's shapes and codes) whose `POST /fapi/v1/countdownCancelAll`
cancels the symbol's open orders when a countdown expires, as Binance does. A real Kafka
broker; each executor is its own OS process. Every wait is on the stand-in's state (its
orders, its countdown and the loop time it runs on), read on its own event loop; the deadline
only bounds a broken run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from connectors.secrets import MASTER_KEY_ENV, ExchangeCredentials
from models.events import OrderIntent, Quote
from tests.ccxt_executor_runs import KEY, SECRET, ccxt_config, desired_quotes, open_quotes
from tests.ccxt_standin import SYMBOL, BinanceUsdmStandIn, StandInThread
from tests.execute_runs import (
    OWNER,
    audit_records,
    ends_fenced,
    key_store,
    quote_intent,
    send,
    start_execute,
    successor_config,
    wait_for,
)
from tests.kafka_service import new_deployment

pytestmark = pytest.mark.integration

TIMEOUT_S = 3.0  # [execute] deadman_timeout_s: re-armed every second
TIMEOUT_MS = int(TIMEOUT_S * 1000)
ARMED = (SYMBOL, TIMEOUT_MS)
WALLET = {"USDT": Decimal("100000")}
SIZE = Decimal("0.01")


def _intent(bid: str, ask: str) -> OrderIntent:
    """A quote on the perpetual, at its default order size (its minimum notional is 100)."""
    return msgspec.structs.replace(
        quote_intent(bid, ask), venue=BinanceUsdmStandIn.ccxt_id,
        symbol=BinanceUsdmStandIn.ccxt_symbol, bids=[Quote(Decimal(bid), SIZE)],
        asks=[Quote(Decimal(ask), SIZE)])


class _Venue(StandInThread):
    """The USD-M stand-in on its own thread, with the owner's key and WALLET."""

    def __init__(self) -> None:
        super().__init__(lambda: BinanceUsdmStandIn(KEY, SECRET, WALLET))

    def now(self) -> float:
        """The stand-in loop's clock, on which its countdowns run."""
        return self.read(lambda _: asyncio.get_running_loop().time())

    def armed_until(self) -> float | None:
        """When the symbol's countdown runs out (loop time); None if none is armed."""
        return self.read(lambda s: s.countdowns[SYMBOL].when() if SYMBOL in s.countdowns
                         else None)


def _deployment(kafka_bootstrap: str, tmp_path: Path):
    """A fresh deployment, the owner's USD-M key in the store, the stand-in serving, and the
    executor's configuration (countdown TIMEOUT_S) and environment."""
    kafka = new_deployment(kafka_bootstrap)
    store, environ, _ = key_store(tmp_path)
    store.put(OWNER, BinanceUsdmStandIn.ccxt_id, ExchangeCredentials(KEY, SECRET))
    venue = _Venue()
    config = ccxt_config(tmp_path / "a.toml", kafka, venue.standin, tmp_path,
                         f"deadman_timeout_s = {TIMEOUT_S}\n"
                         f'initial_balances = {{ USDT = "{WALLET["USDT"]}" }}\n')
    return kafka, venue, config, {**os.environ, MASTER_KEY_ENV: environ[MASTER_KEY_ENV]}


def _quoting(venue: _Venue, kafka, intent: OrderIntent) -> set[str]:
    """Send the intent and wait for its quotes to rest; their client ids."""
    send(kafka, intent)
    wait_for(lambda: venue.read(open_quotes) == desired_quotes(intent), "the intent's quotes")
    return set(venue.read(lambda s: s.open_orders()))


def _outlive(venue: _Venue, resting: set[str], until: float) -> None:
    """Wait until the loop time `until` or a countdown cancelling; the orders must have rested
    throughout, none cancelled by a countdown."""
    wait_for(lambda: venue.read(lambda s: s.countdown_cancels) or venue.now() > until,
          "the time to pass or a countdown to cancel")
    assert venue.read(lambda s: s.countdown_cancels) == []
    assert set(venue.read(lambda s: s.open_orders())) == resting


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(30)


def test_a_killed_executors_orders_are_cancelled_by_the_exchanges_countdown(
    kafka_bootstrap, tmp_path
):
    """SIGKILL leaves the executor no chance to cancel or disarm: once its connections are
    gone no request reaches the venue, and when the countdown it last armed runs out the
    venue itself cancels every open order."""
    kafka, venue, config, env = _deployment(kafka_bootstrap, tmp_path)
    log = tmp_path / "a.log"
    process = start_execute(config, log, env)
    try:
        resting = _quoting(venue, kafka, _intent("59990.00", "60010.00"))
        assert len(resting) == 2 and venue.armed_until() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        wait_for(lambda: venue.read(lambda s: s.connections()) == 0,
              "the killed executor's connections to close")
        seen = venue.read(lambda s: len(s.requests))
        wait_for(lambda: not venue.read(lambda s: s.open_orders()),
              "the countdown to cancel the orders")
        assert venue.read(lambda s: s.requests[seen:]) == []
        assert set(venue.read(lambda s: s.countdown_cancels)) == resting
        assert set(venue.read(lambda s: s.countdown_calls)) == {ARMED}  # never disarmed
        assert venue.armed_until() is None  # it ran out
    finally:
        _stop(process)
        venue.close()


def test_a_running_executor_keeps_its_orders_past_many_countdowns_and_disarms_on_stop(
    kafka_bootstrap, tmp_path
):
    """While the executor runs it re-arms the countdown, so its quotes rest well past three
    countdowns' time; a clean stop (SIGTERM) cancels them itself and then disarms the
    countdown, leaving none armed."""
    kafka, venue, config, env = _deployment(kafka_bootstrap, tmp_path)
    log = tmp_path / "a.log"
    process = start_execute(config, log, env)
    try:
        resting = _quoting(venue, kafka, _intent("59990.00", "60010.00"))
        # The countdown standing now runs out at `first`; unless re-armed, the quotes go then.
        first = venue.armed_until()
        assert first is not None
        _outlive(venue, resting, first + 2 * TIMEOUT_S)
        assert set(venue.read(lambda s: s.countdown_calls)) == {ARMED}
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()[-3000:]
        requests = venue.read(lambda s: list(s.requests))
        assert venue.read(lambda s: s.open_orders()) == []
        assert venue.read(lambda s: s.countdown_cancels) == []  # the executor cancelled them
        assert venue.read(lambda s: s.countdown_calls[-1]) == (SYMBOL, 0)
        assert venue.armed_until() is None
        # Cancelled first, then disarmed: the orders were never unguarded.
        last_cancel = max(n for n, r in enumerate(requests) if r == ("DELETE", "/fapi/v1/order"))
        disarm = max(n for n, r in enumerate(requests)
                     if r == ("POST", "/fapi/v1/countdownCancelAll"))
        assert last_cancel < disarm
        # The futures wallet reconciles with the configured start (no fill happened): every
        # pass while it ran, its positions step included, found nothing.
        records = audit_records(tmp_path / "audit.jsonl")
        ends = [r["payload"]["differences"] for r in records if r["action"] == "reconcile_end"]
        assert ends and all(differences == {} for differences in ends), ends
        assert not [r for r in records if r["action"] == "reconcile_failed"]
    finally:
        _stop(process)
        venue.close()


def test_a_fenced_executor_leaves_the_countdown_armed_for_its_successor(
    kafka_bootstrap, tmp_path
):
    """Executor B (the same account, its own audit file) fences A. A stops without its
    shutdown and without disarming: from B's start until A's exit no countdown call is a
    disarm, and the countdown is armed when A has gone. It is then B's: the quotes (adopted
    by B) outlive the countdown standing at A's exit by a whole timeout, which only B's
    re-arming explains. B's own stop disarms it."""
    kafka, venue, first_config, env = _deployment(kafka_bootstrap, tmp_path)
    first_audit = tmp_path / "audit.jsonl"
    second_config, _ = successor_config(first_config, tmp_path)
    first_log, second_log = tmp_path / "a.log", tmp_path / "b.log"
    first = start_execute(first_config, first_log, env)
    second = None
    try:
        resting = _quoting(venue, kafka, _intent("59990.00", "60010.00"))
        calls = venue.read(lambda s: len(s.countdown_calls))
        second = start_execute(second_config, second_log, env)
        ends_fenced(first, first_log, first_audit, kafka)
        assert set(venue.read(lambda s: s.countdown_calls[calls:])) == {ARMED}  # no disarm
        at_exit = venue.armed_until()
        assert at_exit is not None
        _outlive(venue, resting, at_exit + TIMEOUT_S)
        assert set(venue.read(lambda s: s.countdown_calls[calls:])) == {ARMED}
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, second_log.read_text()[-3000:]
        assert venue.read(lambda s: s.open_orders()) == []
        assert venue.read(lambda s: s.countdown_calls[-1]) == (SYMBOL, 0)
        assert venue.armed_until() is None
    finally:
        _stop(first)
        _stop(second)
        venue.close()
