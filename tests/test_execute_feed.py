"""The executor process's feed (`flows.execute_kafka._Feed`): what it hears before an intent.

In-process, no broker: the md.* consumer, the paper market and the executor are stand-ins
that record what the feed asks of them (the Kafka paths are `tests/test_execute_kafka.py`
and `tests/test_one_engine_kafka.py`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from decimal import Decimal
from types import SimpleNamespace

from flows.execute_kafka import ExecuteStats, _Feed
from models.events import BBO


def _bbo(receive_ts: int) -> BBO:
    return BBO(venue="binance", symbol="ETH/USDT", exchange_ts=receive_ts,
               receive_ts=receive_ts, bid_price=Decimal(1), bid_size=Decimal(1),
               ask_price=Decimal(2), ask_size=Decimal(1))


class _Market:
    """md.* read in the given polls; every topic counts as read to its end."""

    def __init__(self, *polls: list) -> None:
        self.polls = deque(polls)
        self.applied: list[int] = []

    def poll(self, _max_messages: int, _timeout_s: float) -> list:
        return self.polls.popleft() if self.polls else []

    @property
    def at_end(self) -> bool:
        return not self.polls

    def caught_up(self, _topic: str) -> bool:
        return True

    def apply(self, event: BBO) -> bool:
        self.applied.append(event.receive_ts)
        return True


class _Executor:
    def __init__(self, market: _Market) -> None:
        self.market = market
        self.heard_after: list[list[int]] = []  # the events applied at each pump

    async def pump(self) -> None:
        self.heard_after.append(list(self.market.applied))


def test_events_applied_before_a_read_of_later_ones_are_heard_before_the_intent():
    """The market up to an intent's trigger comes in two reads, the second bringing only
    events after it: what the first applied must be pumped before the intent is released.
    Before the fix the second read's empty application reset the flag, and the reports of
    the first were left to the service's wall-clock poller, racing the intent."""
    market = _Market([_bbo(1)], [_bbo(10)])
    executor = _Executor(market)
    process = SimpleNamespace(stats=ExecuteStats())
    feed = _Feed(process, None, executor, None, None, market, market, None)  # type: ignore[arg-type]

    reached = asyncio.run(feed._advance_market(5))

    assert reached and market.applied == [1]
    assert executor.heard_after == [[1]]
