"""The persist flow's Bytewax sink: partitions that each own a connection and an EventWriter.

Items are `(key, events)` pairs (`route` makes them from chunks). Bytewax sends each key to
one partition, in order, which the book-top rows need: every market event is keyed by its
instrument, everything else shares one key. `snapshot` flushes.

From Kafka (`source.PositionedSource`) a chunk is a `SourceChunk` and is keyed by its Kafka
partition instead: quoteflow keys every market topic by instrument, so one Kafka partition
still holds each of its instruments in order, and one sink partition sees all of a Kafka
partition's chunks, so it can commit their offset with their rows (exactly-once, see
`positions`; the sink is built with the same `consumer` name as the source).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.timescale.config import TimescaleConfig, connect
from connectors.timescale.migrations import migrate
from connectors.timescale.source import SourceChunk
from connectors.timescale.writer import EventWriter, WriterStats
from models.events import MarketEvent

# Key of the events that need no per-instrument order (trading records, signals, dead letters).
UNORDERED_KEY = "*"


def route(chunk: Iterable[Any] | SourceChunk) -> list[tuple[str, Any]]:
    """Split a chunk into (key, events) groups, each keeping its events' order; a chunk of
    one Kafka partition stays whole, keyed by that partition."""
    if type(chunk) is SourceChunk:
        return [(chunk.key, chunk)]
    groups: dict[str, list[Any]] = {}
    for event in chunk:
        key = event.key if isinstance(event, MarketEvent) else UNORDERED_KEY
        group = groups.get(key)
        if group is None:
            groups[key] = [event]
        else:
            group.append(event)
    return list(groups.items())


class _WriterPartition(StatefulSinkPartition[list, None]):
    def __init__(
        self,
        name: str,
        conn: psycopg.Connection,
        config: TimescaleConfig,
        on_close: Callable[[str, WriterStats], None] | None,
        consumer: str | None,
    ):
        self._name = name
        self._conn = conn
        self._writer = EventWriter(conn, config, consumer=consumer)
        self._on_close = on_close

    def write_batch(self, values: list[list | SourceChunk]) -> None:
        write = self._writer.write
        for value in values:
            if type(value) is SourceChunk:
                write(value.events, (value.topic, value.partition, value.next_offset))
            else:
                write(value)

    def snapshot(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        try:
            self._writer.flush()
        finally:
            self._conn.close()
        if self._on_close is not None:
            self._on_close(self._name, self._writer.stats)


class TimescaleSink(FixedPartitionedSink[list, None]):
    """Writes events to PostgreSQL/TimescaleDB, migrating the schema first if configured.

    `on_close(partition, stats)` is called with each partition's `WriterStats` when the flow
    ends on finite input (tests, backfills). `consumer` names the offsets and books stored
    with the rows (exactly-once from a `PositionedSource` of the same name).
    """

    def __init__(
        self,
        config: TimescaleConfig,
        on_close: Callable[[str, WriterStats], None] | None = None,
        consumer: str | None = None,
    ):
        self._config = config
        self._on_close = on_close
        self._consumer = consumer

    def list_parts(self) -> list[str]:
        return [f"timescale-{i}" for i in range(self._config.partitions)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> _WriterPartition:
        conn = connect(self._config)
        if self._config.migrate:
            migrate(conn, self._config.timescale)
        return _WriterPartition(for_part, conn, self._config, self._on_close, self._consumer)
