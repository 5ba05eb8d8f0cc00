"""The quote flow's side of a lockstep replay (`models.lockstep`), in-process.

The whole loop on Kafka is `tests/test_one_engine_kafka.py`'s lockstep test."""

from __future__ import annotations

import doctest
import pickle
from decimal import Decimal

import msgspec
import pytest

import flows.halt
import models.lockstep
from connectors.execution.config import ExecuteConfig
from flows.halt import Halt
from flows.lockstep import HaltingLockstepSessions
from models.events import BBO, Fill, HeardThrough, QuotedThrough, Trade
from models.lockstep import LockstepError, LockstepSession
from quoteflow.config import QuoteConfig

VENUE, SYMBOL = "binance", "ETH/USDT"


class _Recorder:
    """A quote session that records what it was shown, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def observe(self, event) -> bool:
        self.seen.append(("observe", event.receive_ts))
        return True

    def requote(self, event, changed: bool) -> list:
        self.seen.append(("quote", event.receive_ts))
        return []

    def on_event(self, event) -> list:
        self.seen.append(("other", getattr(event, "trade_id", type(event).__name__)))
        return []

    def close(self) -> list:
        return []


def _bbo(receive_ts: int) -> BBO:
    return BBO(venue=VENUE, symbol=SYMBOL, exchange_ts=receive_ts, receive_ts=receive_ts,
               bid_price=Decimal(1), bid_size=Decimal(1), ask_price=Decimal(2),
               ask_size=Decimal(1))


def _fill(trade_id: str) -> Fill:
    return Fill(venue=VENUE, symbol=SYMBOL, ts=0, client_order_id="c", trade_id=trade_id,
                side="buy", price=Decimal(1), size=Decimal(1), fee=Decimal(0),
                fee_currency="USDT", liquidity="maker")


def _heard(receive_ts: int) -> HeardThrough:
    return HeardThrough(venue=VENUE, symbol=SYMBOL, receive_ts=receive_ts)


def test_doctests():
    assert doctest.testmod(models.lockstep).failed == 0
    assert doctest.testmod(flows.halt).failed == 0


def test_each_fill_reaches_the_session_at_the_event_the_executor_heard_it_by():
    """Fills published before the mark of event 2 land after observing 2, however the two
    topics interleave when read (here the market data comes last)."""
    inner = _Recorder()
    session = LockstepSession(inner, VENUE, SYMBOL)
    out = []
    for event in (_heard(1), _fill("a"), _heard(2), _fill("b"), _heard(3), _bbo(1), _bbo(2)):
        out += session.on_event(event)
    assert [mark.receive_ts for mark in out] == [1, 2]  # 3 not read yet
    out += session.on_event(_bbo(3))
    assert out == [QuotedThrough(venue=VENUE, symbol=SYMBOL, receive_ts=ts) for ts in (1, 2, 3)]
    assert inner.seen == [("observe", 1), ("quote", 1), ("observe", 2), ("other", "a"),
                          ("quote", 2), ("observe", 3), ("other", "b"), ("quote", 3)]


def test_a_session_without_observe_gets_the_fills_before_the_event():
    class Plain:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_event(self, event) -> list:
            self.seen.append(type(event).__name__)
            return []

    inner = Plain()
    session = LockstepSession(inner, VENUE, SYMBOL)
    trade = Trade(venue=VENUE, symbol=SYMBOL, exchange_ts=5, receive_ts=5, trade_id="t",
                  price=Decimal(1), size=Decimal(1), side="buy")
    for event in (_fill("a"), _heard(5), trade):
        session.on_event(event)
    assert inner.seen == ["Fill", "Trade"]


def test_marks_of_another_market_stop_the_replay():
    session = LockstepSession(_Recorder(), VENUE, SYMBOL)
    session.on_event(_bbo(1))
    with pytest.raises(LockstepError, match="received at 2, the quote flow's next is at 1"):
        session.on_event(_heard(2))


def test_lockstep_needs_event_driven_quotes_and_the_paper_venue():
    with pytest.raises(msgspec.ValidationError, match="requote_ms = 0"):
        msgspec.convert({"lockstep": True, "requote_ms": 100}, QuoteConfig)
    with pytest.raises(msgspec.ValidationError, match="paper venue"):
        msgspec.convert({"lockstep": True, "venue": "ccxt", "owner": "u", "symbols": ["ETH/USDT"]},
                        ExecuteConfig)


def test_a_mismatch_in_the_flow_halts_the_run_and_silences_every_session():
    """`flows.lockstep`: the mismatch becomes the run's halt reason, not an exception, and no
    session of the run emits anything after it (nor at close)."""
    halt = Halt.new("test-lockstep")
    sessions = HaltingLockstepSessions(lambda _key: _Recorder(), halt)
    eth, btc = sessions(f"{VENUE}:{SYMBOL}"), sessions(f"{VENUE}:BTC/USDT")
    eth.on_event(_bbo(1))
    assert eth.on_event(_heard(1)) == [QuotedThrough(venue=VENUE, symbol=SYMBOL, receive_ts=1)]
    btc.on_event(_bbo(1))
    assert not halt()
    eth.on_event(_bbo(2))
    assert eth.on_event(_heard(3)) == []
    assert halt.reason == (f"{VENUE}:{SYMBOL}: the executor matched the market event "
                           "received at 3, the quote flow's next is at 2")
    assert btc.on_event(HeardThrough(venue=VENUE, symbol="BTC/USDT", receive_ts=1)) == []
    assert eth.close() == [] and btc.close() == []


def test_a_halting_session_in_a_snapshot_answers_to_the_current_runs_halt():
    """Bytewax pickles the sessions into its snapshots; one resumed from a snapshot must
    stop with the run that resumed it, not with a copy of the old run's signal."""
    old = Halt.new("test-resume")
    session = HaltingLockstepSessions(lambda _key: _Recorder(), old)(f"{VENUE}:{SYMBOL}")
    snapshot = pickle.dumps(session)
    current = Halt.new("test-resume")
    resumed = pickle.loads(snapshot)
    current.request("stop")
    assert resumed.on_event(_bbo(1)) == [] and resumed.halt is current and not old()
