"""Kafka input for the persist flow that starts where the database says it stopped.

Each Kafka partition is read from the offset stored with the rows (`positions`), never from
a Bytewax snapshot or a consumer group: the database is the one record of what was stored.
Every chunk leaves as a `SourceChunk` that names its partition and the offset after it, so
the sink can commit that offset with the chunk's rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from connectors.kafka.bytewax_io import KafkaEventSource
from connectors.timescale import positions
from connectors.timescale.config import TimescaleConfig, connect
from connectors.timescale.migrations import migrate


@dataclass(frozen=True, slots=True)
class SourceChunk:
    """Events read from one Kafka partition, and the offset of the message after them."""

    topic: str
    partition: int
    next_offset: int
    events: list

    @property
    def key(self) -> str:
        return f"{self.partition}-{self.topic}"


class _PositionedPartition(StatefulSourcePartition[SourceChunk, None]):
    def __init__(self, inner: StatefulSourcePartition, topic: str, partition: int):
        self._inner = inner
        self._topic = topic
        self._partition = partition

    def next_batch(self) -> list[SourceChunk]:
        chunks = self._inner.next_batch()
        if not chunks:
            return []
        # The inner partition's snapshot is the offset after its last message, once it read one.
        next_offset = self._inner.snapshot()
        return [SourceChunk(self._topic, self._partition, next_offset, chunk) for chunk in chunks]

    def snapshot(self) -> None:
        return None  # the database holds the offsets

    def close(self) -> None:
        self._inner.close()


class PositionedSource(FixedPartitionedSource[SourceChunk, None]):
    """`KafkaEventSource`'s partitions, each resumed at `consumer`'s stored offset."""

    def __init__(self, source: KafkaEventSource, config: TimescaleConfig, consumer: str):
        self._source = source
        self._config = config
        self._consumer = consumer
        self._lock = threading.Lock()
        self._offsets: dict[positions.Partition, int] | None = None

    def list_parts(self) -> list[str]:
        return self._source.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> _PositionedPartition:
        index, topic = for_part.split("-", 1)
        partition = int(index)
        start = self._stored_offsets().get((topic, partition))
        inner = self._source.build_part(step_id, for_part, start)
        return _PositionedPartition(inner, topic, partition)

    def _stored_offsets(self) -> dict[positions.Partition, int]:
        # Read once per process, before any of its partitions writes (the sink's partitions
        # only commit offsets of the partitions they were sent, after these were built).
        with self._lock:
            if self._offsets is None:
                with connect(self._config) as conn:
                    if self._config.migrate:
                        migrate(conn, self._config.timescale)
                    self._offsets = positions.load_offsets(conn, self._consumer)
            return self._offsets
