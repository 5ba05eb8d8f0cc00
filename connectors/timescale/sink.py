"""The persist flow's Bytewax sink: partitions that each own a connection and an EventWriter.

Items are `(key, events)` pairs (`route` makes them from chunks). Bytewax sends each key to
one partition, in order, which the book-top rows need: every market event is keyed by its
instrument, everything else shares one key. `snapshot` flushes, so whatever came before a
recovery snapshot is in the database (at-least-once: a resumed flow may write a tail twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.timescale.config import TimescaleConfig, connect
from connectors.timescale.migrations import migrate
from connectors.timescale.writer import EventWriter, WriterStats
from models.events import MarketEvent

# Key of the events that need no per-instrument order (trading records, signals, dead letters).
UNORDERED_KEY = "*"


def route(chunk: Iterable[Any]) -> list[tuple[str, list[Any]]]:
    """Split a chunk into (key, events) groups, each keeping its events' order."""
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
    ):
        self._name = name
        self._conn = conn
        self._writer = EventWriter(conn, config)
        self._on_close = on_close

    def write_batch(self, values: list[list]) -> None:
        write = self._writer.write
        for events in values:
            write(events)

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
    ends on finite input (tests, backfills).
    """

    def __init__(
        self,
        config: TimescaleConfig,
        on_close: Callable[[str, WriterStats], None] | None = None,
    ):
        self._config = config
        self._on_close = on_close

    def list_parts(self) -> list[str]:
        return [f"timescale-{i}" for i in range(self._config.partitions)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: None
    ) -> _WriterPartition:
        conn = connect(self._config)
        if self._config.migrate:
            migrate(conn, self._config.timescale)
        return _WriterPartition(for_part, conn, self._config, self._on_close)
