"""Bytewax source and sink on Kafka that speak typed events.

The source wraps Bytewax's own `KafkaSource`: one Bytewax partition per Kafka partition,
and each partition's next offset in the recovery snapshot, so a flow restarted from a
snapshot resumes exactly where its last epoch ended. Each poll's messages leave as one
list (a chunk, like `connectors.memory.ChunkedSource`), because Bytewax's cost is per item.
Bad messages come out as `DeadLetter` events in their place; flows pass them to the sink,
which routes them to the dead-letter topic.

`KafkaEventSink` is quoteflow's one Kafka sink, an `EventProducer` per worker (Bytewax's
`KafkaSink` writes to one topic and has no delivery accounting). Its outage policy:

- At start-up a broker that does not answer, refused credentials or missing topics stop
  the flow at once (`EventProducer` checks them): a configuration error, not an outage.
- Once running, nothing is ever dropped: librdkafka never expires a queued message
  (`message.timeout.ms=0`) and reconnects with its own back-off, and idempotence keeps its
  retries free of duplicates and in order. `write_batch` blocks until the batch is on the
  broker, logging a warning every `retry_log_s` while it waits, so Bytewax never snapshots
  past output that is not on the broker (at-least-once; intents carry deterministic ids so
  the executor recognises a replayed one). Queue full blocks the producer (back-pressure).
- A delivery the broker refuses for good (not authorized, message too large) raises
  `KafkaDeliveryError`: waiting cannot fix it, and the flow restarts from its last snapshot,
  before the batch, once the cause is fixed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import OFFSET_BEGINNING

from connectors.kafka.config import KafkaConfig, KafkaUnavailable, connect_admin
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import require_topics, topic_name
from connectors.kafka.wire import WireDecoder
from models.events import Event

_log = logging.getLogger(__name__)


class _EventPartition(StatefulSourcePartition[list[Event], int | None]):
    def __init__(self, messages: StatefulSourcePartition, decoder: WireDecoder):
        self._messages = messages
        self._decode = decoder.decode

    def next_batch(self) -> list[list[Event]]:
        batch = self._messages.next_batch()
        if not batch:
            return []
        now_ns = time.time_ns()
        decode = self._decode
        return [[decode(m.value, m.topic, m.partition, m.offset, now_ns) for m in batch]]

    def snapshot(self) -> int | None:
        return self._messages.snapshot()

    def close(self) -> None:
        self._messages.close()


class KafkaEventSource(FixedPartitionedSource[list[Event], int | None]):
    """Chunks of events from `topics` (base names; the deployment prefix is added).

    `tail=False` ends each partition at the end of what the topic held when it was reached:
    replays and tests run to completion. Offsets live in Bytewax snapshots, not in a
    consumer group.
    """

    def __init__(
        self,
        config: KafkaConfig,
        topics: Iterable[str],
        *,
        tail: bool = True,
        starting_offset: int = OFFSET_BEGINNING,
        batch_size: int = 1000,
    ):
        self._config = config
        self._topics = [topic_name(config.prefix, t) for t in topics]
        self._messages = KafkaSource(
            [config.bootstrap], self._topics, tail=tail, starting_offset=starting_offset,
            batch_size=batch_size, add_config=config.client_settings(),
        )

    def list_parts(self) -> list[str]:
        # Bytewax's listing waits forever for an absent broker: check with a deadline first.
        require_topics(connect_admin(self._config), self._topics, self._config.connect_timeout_s)
        return self._messages.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _EventPartition:
        return _EventPartition(
            self._messages.build_part(step_id, for_part, resume_state),
            WireDecoder(self._config.prefix),
        )


class _ProducerPartition(StatelessSinkPartition[Event | list[Event]]):
    def __init__(self, producer: EventProducer, retry_log_s: float):
        self._producer = producer
        self._retry_log_s = retry_log_s

    def write_batch(self, items: list[Event | list[Event]]) -> None:
        send = self._producer.send
        for item in items:
            if isinstance(item, list):
                for event in item:
                    send(event)
            else:
                send(item)
        while True:
            try:
                self._producer.flush(self._retry_log_s)
                return
            except KafkaUnavailable as waiting:
                _log.warning("Kafka sink waiting for the broker (nothing is dropped): %s",
                             waiting)

    def close(self) -> None:
        self._producer.close()


class KafkaEventSink(DynamicSink[Event | list[Event]]):
    """Writes events, or chunks (lists) of events, each to the topic its type routes to;
    waits out broker outages, never drops (the policy is in the module's docstring)."""

    def __init__(self, config: KafkaConfig, retry_log_s: float = 10.0):
        self._config = config
        self._retry_log_s = retry_log_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        producer = EventProducer(self._config, **{"message.timeout.ms": 0})
        return _ProducerPartition(producer, self._retry_log_s)
