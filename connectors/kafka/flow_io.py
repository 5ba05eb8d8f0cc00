"""Kafka source for long-running flows: deterministic replays, patient with brokers.

`CoPartitionedSource` reads the same partition index of several topics as one Bytewax
partition. quoteflow's producers key every market topic by `venue:symbol` with the same
partitioner and the `md.*` topics have the same partition count, so partition i of
`md.book`, `md.bbo` and `md.trades` holds the same instruments. Merged by receive time,
those streams reach a flow in one order that depends only on what the topics hold, not on
when fetches return: a replay after a crash, or a run with more workers, computes exactly
what an uninterrupted run computed. The merge waits only for a topic that is neither
buffered nor at its end. A topic is at its end once its last message read reaches the high
watermark of the fetch that brought it, so a caught-up live consumer knows it at once and
the merge costs no latency live; librdkafka's end-of-partition event would come only with
the next fetch response, up to `fetch.wait.max.ms` later. Each topic's snapshot offset is
its first message not yet emitted.

Each poll leaves as one list of typed events (a chunk: Bytewax's cost is per item), dead
letters in place of bad messages.

A worker reads all its partitions of a source through one librdkafka consumer
(`_WorkerConsumer`), not one consumer per partition: each consumer keeps a fetch open at the
broker, answered whenever one of its partitions gets data, and threads of its own, so six
market partitions on six consumers meant six fetch responses and six clients woken where one
would do. The quote flow's p99 at 20,000 events/s went from 25 to 18 ms (docs/benchmarks.md,
"One consumer per worker").

Errors never stop the flow unless they cannot heal: librdkafka reconnects to a broker that
went away by itself, so connection errors are logged (rate-limited) and polling backs off
until messages flow again; a fatal error, a vanished topic or an offset the broker no longer
has (data lost, `auto.offset.reset=error`) raises.

The sink is `connectors.kafka.bytewax_io.KafkaEventSink` (its outage policy is there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from connectors.kafka.config import KafkaConfig, connect_admin
from connectors.kafka.topics import require_topics, topic_name
from connectors.kafka.wire import WireDecoder
from models.events import Event, MarketEvent

_log = logging.getLogger(__name__)

_MIN_BACKOFF_S = 0.05
_END_PROBE_S = 1.0
_MAX_BACKOFF_S = 2.0
_LOG_EVERY_S = 10.0
_IDLE_FETCH_WAIT_MS = 500
_FATAL_PARTITION_ERRORS = frozenset({
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._AUTO_OFFSET_RESET,
    KafkaError.OFFSET_OUT_OF_RANGE,
})
# Released at once: their order relative to market data decides nothing downstream.
_UNORDERED = -1


class NotCoPartitionedError(ValueError):
    """Topics read as one stream must have the same partition count."""


class _ErrorLog:
    """Counts errors and logs the first of each burst and then one line per `_LOG_EVERY_S`."""

    __slots__ = ("_last_logged", "count")

    def __init__(self) -> None:
        self.count = 0
        self._last_logged = 0.0

    def __call__(self, where: str, error: KafkaError) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY_S:
            self._last_logged = now
            _log.warning(
                "Kafka %s: %s (%d errors so far; retrying)", where, error.str(), self.count
            )


def _order_ts(event: Event) -> int:
    return event.receive_ts if isinstance(event, MarketEvent) else _UNORDERED


class _CoPartition(StatefulSourcePartition[list[Event], dict[str, int]]):
    def __init__(
        self,
        shared: _WorkerConsumer,
        name: str,
        topics: list[str],
        index: int,
        offsets: dict[str, int],
        decoder: WireDecoder,
        *,
        tail: bool,
        batch_size: int,
        until: Callable[[Event], bool] | None = None,
        halted: Callable[[], bool] | None = None,
    ):
        self._errors = _ErrorLog()
        self._until = until
        self._halted = halted
        self._ended = False  # `until` was true of an event: nothing more is read
        self._shared = shared
        self._name = name
        self._consumer = shared.consumer
        shared.join(name, [TopicPartition(t, index, offsets[t]) for t in topics],
                    self._on_client_error)
        self._partitions = {t: TopicPartition(t, index) for t in topics}
        self._topics = topics
        self._index = index
        self._next_offset = dict(offsets)  # next message to fetch, per topic
        self._buffers: dict[str, deque[tuple[int, int, Event]]] = {t: deque() for t in topics}
        self._at_end = dict.fromkeys(topics, False)
        self._decode = decoder.decode
        self._tail = tail
        self._batch_size = batch_size
        self._backoff_s = 0.0
        self._awake: datetime | None = None
        self._next_probe = 0.0

    def next_batch(self) -> list[list[Event]]:
        if self._ended or (self._halted is not None and self._halted()):
            raise StopIteration
        # Called, so any back-off is over; a stale wake-up time would make Bytewax spin.
        self._awake = None
        messages = self._shared.consume(self._name, self._batch_size)
        now_ns = time.time_ns()
        decode, buffers, at_end = self._decode, self._buffers, self._at_end
        next_offset = self._next_offset
        received: set[str] = set()
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_partition_error(message.topic(), error)
                continue
            topic, offset = message.topic(), message.offset()
            event = decode(message.value(), topic, self._index, offset, now_ns)
            buffers[topic].append((_order_ts(event), offset, event))
            next_offset[topic] = offset + 1
            received.add(topic)
        if received:
            self._backoff_s = 0.0
        for topic, done in at_end.items():
            # A topic with no new message may have reached its end by stepping over a
            # transaction's commit marker (an offset never delivered as a message).
            if topic in received or not done:
                at_end[topic] = self._read_to_watermark(topic)
        if not received and not self._tail and not messages:
            self._probe_ends()
        chunk = self._release()
        if self._until is not None:
            chunk = self._up_to_the_end(chunk)
        if not (chunk or self._tail or any(buffers.values())) and all(at_end.values()):
            raise StopIteration
        return [chunk] if chunk else []

    def _release(self) -> list[Event]:
        buffers = list(self._buffers.items())
        if len(buffers) == 1:
            buffer = buffers[0][1]
            chunk = [event for _, _, event in buffer]
            buffer.clear()
            return chunk
        chunk: list[Event] = []
        at_end = self._at_end
        while True:
            first: deque | None = None
            first_ts = 0
            for topic, buffer in buffers:
                if not buffer:
                    if not at_end[topic]:
                        # This topic may still hold something older than every buffered head.
                        return chunk
                    continue
                ts = buffer[0][0]
                if first is None or ts < first_ts:
                    first, first_ts = buffer, ts
            if first is None:
                return chunk
            chunk.append(first.popleft()[2])

    def _up_to_the_end(self, chunk: list[Event]) -> list[Event]:
        until = self._until
        for i, event in enumerate(chunk):
            if until(event):  # type: ignore[misc]
                self._ended = True
                return chunk[:i]
        return chunk

    def _read_to_watermark(self, topic: str) -> bool:
        # The cached high watermark is the newest fetch response's, never older than the
        # messages read, so equality means nothing more was on the broker at that fetch. A
        # response with a partition error (a restarting broker) caches -1: no evidence.
        _, high = self._consumer.get_watermark_offsets(self._partitions[topic], cached=True)
        return high >= 0 and self._position(topic) >= high

    def _position(self, topic: str) -> int:
        """The next offset to read: past the last message delivered, and past a transaction's
        commit marker once the consumer has stepped over it (a transactional producer's
        topic, e.g. the executor's orders.events, ends with one)."""
        (position,) = self._consumer.position([self._partitions[topic]])
        return max(self._next_offset[topic], position.offset)

    def _probe_ends(self) -> None:
        """Idle and reading to the end: ask the broker where each unfinished topic ends.

        End-of-partition events come once, when a fetch reaches the end; around a broker
        restart one can be lost (the fetch that reached the end failed), and the cached
        watermark of a failed fetch is -1. The broker's own high watermark, asked at most
        once a second, is the evidence then.
        """
        now = time.monotonic()
        if now < self._next_probe:
            return
        self._next_probe = now + _END_PROBE_S
        for topic, done in self._at_end.items():
            if done:
                continue
            try:
                low, high = self._consumer.get_watermark_offsets(
                    self._partitions[topic], timeout=_END_PROBE_S, cached=False
                )
            except KafkaException:
                continue  # the broker is not answering yet: ask again later
            position = self._position(topic)
            if position == OFFSET_BEGINNING:
                position = low  # nothing read yet: from the start
            if high >= 0 and position >= high:
                self._at_end[topic] = True

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> dict[str, int]:
        return {
            topic: buffer[0][1] if buffer else self._next_offset[topic]
            for topic, buffer in self._buffers.items()
        }

    def close(self) -> None:
        self._shared.leave(self._name)

    def _on_partition_error(self, topic: str, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            self._at_end[topic] = True
            return
        if error.fatal() or error.code() in _FATAL_PARTITION_ERRORS:
            raise KafkaException(error)
        self._errors(f"{topic}[{self._index}]", error)
        self._back_off()

    def _on_client_error(self, error: KafkaError) -> None:
        # Runs inside consume(): raising here would surface as a confusing callback error.
        self._errors("client", error)
        self._back_off()

    def _back_off(self) -> None:
        self._backoff_s = min(max(self._backoff_s * 2, _MIN_BACKOFF_S), _MAX_BACKOFF_S)
        self._awake = datetime.now(UTC) + timedelta(seconds=self._backoff_s)


class _WorkerConsumer:
    """One librdkafka consumer for every partition of a source that one worker reads.

    Each Bytewax partition joins, by its name, with its topic partitions; `consume(name)`
    fetches for all of them at once and keeps what belongs to the others until they ask. A
    worker calls its partitions from its own thread only, so nothing here is locked. The
    consumer closes when the last partition leaves.
    """

    def __init__(self, settings: dict, on_closed: Callable[[], None]):
        self._on_error: dict[str, Callable[[KafkaError], None]] = {}
        self.consumer = Consumer(settings | {"error_cb": self._client_error})
        self._inboxes: dict[str, list] = {}
        self._routes: dict[tuple[str, int], str] = {}  # (topic, partition) → its part's name
        self._assigned: dict[str, list[TopicPartition]] = {}
        self._on_closed = on_closed

    def join(
        self, name: str, partitions: list[TopicPartition],
        on_error: Callable[[KafkaError], None],
    ) -> None:
        self.consumer.incremental_assign(partitions)
        self._assigned[name] = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        self._routes.update(((tp.topic, tp.partition), name) for tp in partitions)
        self._inboxes[name] = []
        self._on_error[name] = on_error

    def consume(self, name: str, batch_size: int) -> list:
        inboxes = self._inboxes
        mine = inboxes[name]
        if len(inboxes) == 1 and not mine:  # alone, and nothing kept from when it was not
            return self.consumer.consume(batch_size, 0)
        routes = self._routes
        for message in self.consumer.consume(batch_size, 0):
            topic = message.topic()
            if topic is None:
                mine.append(message)  # a client-wide error names no partition: ours to report
                continue
            owner = routes.get((topic, message.partition()))
            if owner is not None:  # else its part has left, its offsets snapshotted
                inboxes[owner].append(message)
        inboxes[name] = []
        return mine

    def leave(self, name: str) -> None:
        self._inboxes.pop(name, None)
        self._on_error.pop(name, None)
        assigned = self._assigned.pop(name, [])
        for tp in assigned:
            self._routes.pop((tp.topic, tp.partition), None)
        if self._inboxes:
            if assigned:
                self.consumer.incremental_unassign(assigned)
            return
        self.consumer.close()
        self._on_closed()

    def _client_error(self, error: KafkaError) -> None:
        # Every partition on this consumer waits alike: each backs off.
        for on_error in list(self._on_error.values()):
            on_error(error)


class CoPartitionedSource(FixedPartitionedSource[list[Event], dict[str, int]]):
    """Chunks of events from `topics` (base names), partition i of each merged by receive time.

    `tail=False` ends each partition once every topic's partition is at its end: replays and
    tests run to completion. Offsets live in Bytewax snapshots, not in a consumer group.
    """

    def __init__(
        self,
        config: KafkaConfig,
        topics: Iterable[str],
        *,
        tail: bool = True,
        batch_size: int = 1000,
        until: Callable[[Event], bool] | None = None,
        halted: Callable[[], bool] | None = None,
    ):
        """`until`: a partition ends after an event it is true of (the event itself is not
        emitted), whatever `tail` says: a lockstep replay's last mark. `halted`: every
        partition ends, whatever `tail` says, once it returns true (a step of the flow
        found a condition it cannot go on from, `flows.halt`)."""
        self._config = config
        self._topics = [topic_name(config.prefix, t) for t in topics]
        if not self._topics:
            raise ValueError("CoPartitionedSource needs at least one topic")
        self._tail = tail
        self._batch_size = batch_size
        self._until = until
        self._halted = halted
        self._consumers: dict[int, _WorkerConsumer] = {}  # by worker thread

    def list_parts(self) -> list[str]:
        admin = connect_admin(self._config)
        require_topics(admin, self._topics, self._config.connect_timeout_s)
        listed = admin.list_topics(timeout=self._config.connect_timeout_s).topics
        counts = {topic: len(listed[topic].partitions) for topic in self._topics}
        if len(set(counts.values())) != 1:
            raise NotCoPartitionedError(
                f"topics read as one stream need equal partition counts, got {counts}"
            )
        return [str(index) for index in range(counts[self._topics[0]])]

    def build_part(
        self, step_id: str, for_part: str, resume_state: dict[str, int] | None
    ) -> _CoPartition:
        offsets = dict.fromkeys(self._topics, OFFSET_BEGINNING) | (resume_state or {})
        return _CoPartition(
            self._worker_consumer(), for_part, self._topics, int(for_part), offsets,
            WireDecoder(self._config.prefix),
            tail=self._tail, batch_size=self._batch_size, until=self._until,
            halted=self._halted,
        )

    def _worker_consumer(self) -> _WorkerConsumer:
        """This worker's consumer of the source: its thread builds and polls its partitions."""
        thread = threading.get_ident()
        shared = self._consumers.get(thread)
        if shared is None:
            settings = self._config.client_settings() | {
                "group.id": "quoteflow-unused",  # required by librdkafka; offsets are ours
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "error",
                # The broker answers a fetch as soon as a byte arrives (fetch.min.bytes=1), so
                # this only bounds an idle one; short waits buy no latency and multiply idle
                # fetches per consumer (5 ms took a third of a core from broker and flow each).
                "fetch.wait.max.ms": _IDLE_FETCH_WAIT_MS,
            }
            shared = self._consumers[thread] = _WorkerConsumer(
                settings, lambda: self._consumers.pop(thread, None)
            )
        return shared
