"""Bytewax source and sink on Kafka that speak typed events.

The source wraps Bytewax's own `KafkaSource`: one Bytewax partition per Kafka partition,
and each partition's next offset in the recovery snapshot, so a flow restarted from a
snapshot resumes exactly where its last epoch ended. Each poll's messages leave as one
list (a chunk, like `connectors.memory.ChunkedSource`), because Bytewax's cost is per item.
Bad messages come out as `DeadLetter` events in their place; flows pass them to the sink,
which routes them to the dead-letter topic.

The sink is our own `EventProducer` (Bytewax's `KafkaSink` writes to one topic and has no
delivery accounting); it flushes before `write_batch` returns, so an epoch's output is on
the broker before Bytewax snapshots past it (at-least-once; intents carry deterministic
ids so the executor recognises a replayed one).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import OFFSET_BEGINNING

from connectors.kafka.config import KafkaConfig, connect_admin
from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import require_topics, topic_name
from connectors.kafka.wire import WireDecoder
from models.events import Event


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
            batch_size=batch_size, add_config={"client.id": config.client_id},
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
    def __init__(self, producer: EventProducer):
        self._producer = producer

    def write_batch(self, items: list[Event | list[Event]]) -> None:
        send = self._producer.send
        for item in items:
            if isinstance(item, list):
                for event in item:
                    send(event)
            else:
                send(item)
        self._producer.flush()

    def close(self) -> None:
        self._producer.close()


class KafkaEventSink(DynamicSink[Event | list[Event]]):
    """Writes events, or chunks (lists) of events, each to the topic its type routes to."""

    def __init__(self, config: KafkaConfig):
        self._config = config

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        return _ProducerPartition(EventProducer(self._config))
