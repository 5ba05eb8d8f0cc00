"""Batched COPY writers: events in, one buffer per table, `COPY ... FROM STDIN` out.

A table is flushed when its buffer holds `batch_rows` rows, and every table once
`flush_interval_s` has passed (checked as events arrive: the writer has no thread of its
own). A flush is one transaction; each table's COPY runs in a savepoint so one bad row
costs a retry, not the batch: the failed batch is split in halves until the rows the
server refuses are alone, and those go to `dead_letters` with the server's reason. Events
the row makers refuse go there too. Connection and schema errors are not row errors:
they propagate, so the flow stops instead of dead-lettering everything.

Given a `consumer` name, the writer is exactly-once for Kafka input (`positions`): each
`write` may say which Kafka partition its events came from and the offset after them, and
every flush is then of all tables at once, between two writes, storing those offsets and the
touched order books in the same transaction as the rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from connectors.timescale import positions, rows, schema
from connectors.timescale.config import TimescaleConfig
from connectors.timescale.positions import Partition
from models.events import LOCKSTEP_MARKS, BookDelta, BookSnapshot, DeadLetter, encode

log = logging.getLogger(__name__)

_SQL_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
# Raised client-side while a value is serialised (no SQLSTATE): a row problem as well.
_ENCODE_ERRORS = (psycopg.ProgrammingError, TypeError, ValueError)


@dataclass(slots=True)
class WriterStats:
    written: dict[str, int] = field(default_factory=dict)  # rows stored, by table
    rejected: int = 0  # events stored as dead letters instead (refused here or by the server)
    lost: int = 0  # rejections that could not even be stored as dead letters (logged)
    flushes: int = 0


class _Buffer:
    """One table's pending rows, with the events they came from (for dead letters)."""

    __slots__ = ("copy_sql", "events", "rows", "table")

    def __init__(self, table: schema.Table):
        self.table = table
        self.copy_sql = f"COPY {table.name} ({', '.join(table.column_names)}) FROM STDIN"
        self.rows: list[rows.Row] = []
        self.events: list[Any] = []


class EventWriter:
    """Writes `models.events` to their tables over one connection it does not own."""

    def __init__(
        self,
        conn: psycopg.Connection,
        config: TimescaleConfig,
        *,
        consumer: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ):
        self._conn = conn
        self._batch_rows = config.batch_rows
        self._interval = config.flush_interval_s
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self._last_flush = monotonic()
        self.stats = WriterStats()
        self._buffers = {name: _Buffer(table) for name, table in schema.TABLES.items()}
        self._dead = self._buffers[schema.DEAD_LETTERS.name]
        self._consumer = consumer
        self._offsets: dict[Partition, int] = {}  # read and buffered, not yet committed
        self._books = rows.BookTops()
        if consumer is not None:
            self._books.restore(positions.load_books(conn, consumer))  # type: ignore[arg-type]
        book_row = self._books.row
        self._makers: dict[type, tuple[_Buffer, rows.RowMaker]] = {
            event_type: (self._buffers[table.name], make)
            for event_type, (table, make) in rows.ROW_MAKERS.items()
        }
        book_buffer = self._buffers[schema.MD_BOOK_TOP.name]
        self._makers[BookSnapshot] = (book_buffer, book_row)
        self._makers[BookDelta] = (book_buffer, book_row)
        self._makers[DeadLetter] = (self._dead, self._dead_letter_event_row)

    def write(self, events: Iterable[Any], position: tuple[str, int, int] | None = None) -> None:
        """Buffer the events' rows; flush full tables, and everything when the interval is up.

        `position` (topic, partition, next offset) says where the events came from in Kafka;
        with a `consumer`, it is committed with their rows.
        """
        makers = self._makers
        limit = self._batch_rows
        whole = self._consumer is not None  # flush only between writes, every table at once
        full = False
        for event in events:
            maker = makers.get(event.__class__)
            if maker is None:
                if event.__class__ in LOCKSTEP_MARKS:
                    continue  # how far a lockstep replay had gone: not data
                self._reject(event, "persist", f"no table for {type(event).__name__}")
                continue
            buffer, make = maker
            try:
                row = make(event)
            except Exception as error:  # any malformed event is a dead letter, never a crash
                self._reject(event, f"persist:{buffer.table.name}", _describe(error))
                continue
            buffer.rows.append(row)
            buffer.events.append(event)
            if len(buffer.rows) >= limit:
                if whole:
                    full = True
                else:
                    self._flush((buffer,))
        if position is not None:
            topic, partition, next_offset = position
            self._offsets[(topic, partition)] = next_offset
        if full or self._monotonic() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Store everything buffered, in one transaction."""
        self._flush(tuple(self._buffers.values()))

    def _flush(self, buffers: tuple[_Buffer, ...]) -> None:
        # Dead letters go last so this flush's rejections are stored in the same transaction.
        pending = [b for b in buffers if b.rows and b is not self._dead]
        if self._dead.rows:
            pending.append(self._dead)
        if not (pending or self._offsets):
            self._last_flush = self._monotonic()
            return
        with self._conn.transaction():
            for buffer in pending:
                refused = self._copy_isolating(buffer.copy_sql, buffer.rows, buffer.events)
                self._count(buffer.table.name, len(buffer.rows) - len(refused))
                buffer.rows = []
                buffer.events = []
                for event, reason in refused:
                    self._reject(event, f"persist:{buffer.table.name}", reason)
            if self._dead.rows:  # rejections of this flush, or of dead letters themselves
                self._store_rejections()
            if self._consumer is not None:
                positions.save(
                    self._conn, self._consumer, self._offsets, self._books.take_touched()
                )
        self._offsets = {}
        self.stats.flushes += 1
        self._last_flush = self._monotonic()

    def _copy_isolating(
        self, copy_sql: str, batch: list[rows.Row], events: list[Any]
    ) -> list[tuple[Any, str]]:
        """COPY the batch; return the (event, reason) pairs of the rows the server refused."""
        try:
            with (
                self._conn.transaction(),
                self._conn.cursor() as cursor,
                cursor.copy(copy_sql) as copy,
            ):
                for row in batch:
                    copy.write_row(row)
            return []
        except _SQL_ERRORS as error:
            reason = _describe(error)
        except _ENCODE_ERRORS as error:
            if getattr(error, "sqlstate", None) is not None:
                raise  # a server-side error of another class: schema or permissions, not data
            reason = _describe(error)
        if len(batch) == 1:
            return [(events[0], reason)]
        half = len(batch) // 2
        return self._copy_isolating(copy_sql, batch[:half], events[:half]) + (
            self._copy_isolating(copy_sql, batch[half:], events[half:])
        )

    def _store_rejections(self) -> None:
        dead = self._dead
        refused = self._copy_isolating(dead.copy_sql, dead.rows, dead.events)
        self._count(dead.table.name, len(dead.rows) - len(refused))
        dead.rows = []
        dead.events = []
        for event, reason in refused:
            self.stats.lost += 1
            log.error("dead letter could not be stored (%s): %r", reason, event)

    def _reject(self, event: Any, source: str, reason: str) -> None:
        self.stats.rejected += 1
        raw = _raw(event)
        # Filed under the event's own time when it has a usable one, else under now.
        ts_ns = getattr(event, "receive_ts", None) or getattr(event, "ts", None)
        if not rows.is_timestamp_ns(ts_ns):
            ts_ns = self._wall_ns()
        self._dead.rows.append(rows.dead_letter_row(ts_ns, source, reason, raw))
        self._dead.events.append(event)

    def _dead_letter_event_row(self, event: DeadLetter) -> rows.Row:
        ts_ns = event.receive_ts if event.receive_ts is not None else self._wall_ns()
        return rows.dead_letter_row(ts_ns, event.source, event.reason, event.raw)

    def _count(self, table: str, n: int) -> None:
        written = self.stats.written
        written[table] = written.get(table, 0) + n


def _describe(error: BaseException) -> str:
    """The error's class and first line (the server's primary message where it has one)."""
    text = getattr(getattr(error, "diag", None), "message_primary", None) or str(error)
    first_line = text.strip().split("\n", 1)[0]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def _raw(event: Any) -> str:
    """The event as its topic's JSON where it still encodes, else Python's escaped repr.

    Either way free of NUL bytes, which PostgreSQL text cannot hold (JSON escapes them).
    """
    try:
        return encode(event).decode()
    except Exception:  # the event is malformed: that is why it is here
        return repr(event)
