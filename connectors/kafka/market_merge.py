"""The md.* topics merged back into one stream in receive order, for readers outside Bytewax.

Each topic keeps its own order, but a consumer fetches the topics in batches of its own
choosing: one poll may bring a minute of md.bbo and nothing yet of md.book for the same
minute. Sorting each poll is not enough (the next poll can bring earlier events); an event
may only be released once every topic has shown something at least as late, or is caught
up (read to its end). That is the merge the quote flow's co-partitioned source does
(`connectors.kafka.flow_io`), and what the paper venue behind `quoteflow execute` needs to
see the market as a backtest does.

Used like a deque: `extend` with what was read, `[0]` and `popleft` for the next event in
receive order; it is falsy while the next event cannot be known yet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from connectors.kafka.topics import TOPICS
from models.events import Event

MARKET_TOPICS = ("md.book", "md.bbo", "md.trades")
_TOPIC_OF = {kind: spec.name for spec in TOPICS if spec.name in MARKET_TOPICS
             for kind in spec.event_types}


class MarketMerge:
    __slots__ = ("_caught_up", "_queues")

    def __init__(self, caught_up: Callable[[str], bool], topics: Iterable[str] = MARKET_TOPICS):
        """`caught_up(topic)`: every partition of the topic has been read to its end."""
        self._caught_up = caught_up
        self._queues: dict[str, deque[Event]] = {topic: deque() for topic in topics}

    def extend(self, events: Iterable[Event]) -> None:
        queues = self._queues
        for event in events:
            queues[_TOPIC_OF[type(event)]].append(event)

    def _next(self) -> deque[Event] | None:
        best: deque[Event] | None = None
        for topic, queue in self._queues.items():
            if queue:
                if best is None or queue[0].receive_ts < best[0].receive_ts:
                    best = queue
            elif not self._caught_up(topic):
                return None  # it may still bring something earlier than every head
        return best

    def __bool__(self) -> bool:
        return self._next() is not None

    def __getitem__(self, index: int) -> Event:
        if index != 0:
            raise IndexError("only the next event can be seen")
        queue = self._next()
        if queue is None:
            raise IndexError("the next event is not known yet")
        return queue[0]

    def popleft(self) -> Event:
        queue = self._next()
        if queue is None:
            raise IndexError("the next event is not known yet")
        return queue.popleft()

    @property
    def held(self) -> int:
        """Events read and not released yet."""
        return sum(len(queue) for queue in self._queues.values())
