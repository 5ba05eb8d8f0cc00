"""The append-only audit file: one canonical JSON record per line, hash-chained.

The file is only ever opened for appending (O_APPEND) and never truncated or rewritten.
Reopening continues the chain from its last record. A file whose last line was cut off
(a crash mid-write) is refused rather than repaired, since a repair would be a rewrite:
`verify_audit` names the cut and the operator moves the file aside.

Durability is a trade-off the caller picks with `sync_every`: every record goes to the OS
at once (a crash of the process loses nothing), and an fsync after every `sync_every`
records bounds what a power loss can take; 0 syncs only on `sync()` and `close()`.
One writer per file, enforced with an exclusive lock, so two processes never fork a chain.

The file alone cannot show that its tail was cut off, that it was recomputed whole, or that
a record was appended by someone else: every record is also published when appended, and
what was published is the anchor (the `audit` topic; the database's `audit` table, which
the persist flow fills from it). `refuse_if_behind` stops a restart on a file whose anchor
goes on past its end; `verify_anchored` checks a whole file against an anchor;
`unpublished_tail` is a restart's check that also returns what a kill left unpublished.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from confluent_kafka import Consumer, TopicPartition

from connectors.atomic_file import fsync_directory
from connectors.kafka.config import KafkaConfig, settled
from connectors.kafka.topics import topic_name
from models.audit import (
    GENESIS_HASH,
    AuditChain,
    AuditRecord,
    Link,
    VerifyResult,
    anchored_head,
    check_anchor,
    encode_line,
    parse_line,
    verify_lines,
)

_TAIL_CHUNK = 64 * 1024


class AuditStoreError(RuntimeError):
    """The store cannot append without breaking the chain; the message says why."""


class AuditStore:
    __slots__ = ("_chain", "_fd", "_unsynced", "path", "sync_every")

    def __init__(self, path: str | Path, *, sync_every: int = 1) -> None:
        if sync_every < 0:
            raise ValueError(f"sync_every must be >= 0, not {sync_every}")
        self.path = Path(path)
        self.sync_every = sync_every
        self._unsynced = 0
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise AuditStoreError(f"{self.path} is open by another writer") from None
        try:
            self._chain = _resume_chain(self.path)
        except AuditStoreError:
            os.close(self._fd)
            raise
        if not existed:
            fsync_directory(self.path.parent)

    @property
    def last_seq(self) -> int:
        return self._chain.last_seq

    @property
    def last_hash(self) -> str:
        return self._chain.last_hash

    def append(self, ts: int, actor: str, action: str, payload: Any) -> AuditRecord:
        if self._fd < 0:
            raise AuditStoreError(f"{self.path} is closed")
        record = self._chain.append(ts, actor, action, payload)
        try:
            _write_all(self._fd, encode_line(record))
        except OSError:
            # Part of the record may be in the file: appending more would bury a broken
            # line mid-chain, so the store stops here and a reopen reports the cut.
            os.close(self._fd)
            self._fd = -1
            raise
        self._unsynced += 1
        if self.sync_every and self._unsynced >= self.sync_every:
            self.sync()
        return record

    def sync(self) -> None:
        if self._unsynced and self._fd >= 0:
            os.fsync(self._fd)
            self._unsynced = 0

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_audit(path: str | Path, expected_head: str | None = None) -> VerifyResult:
    """Check an audit file; `expected_head` (a last hash kept elsewhere) also catches a cut end."""
    try:
        with open(path, "rb") as lines:
            return verify_lines(lines, expected_head)
    except OSError as error:
        return VerifyResult(
            ok=False, records=0, last_hash="", reason="UNREADABLE", detail=str(error)
        )


def read_audit(path: str | Path) -> Iterator[AuditRecord]:
    """The records of an audit file, oldest first (an `AuditStore` open on it has already
    refused a cut-off end)."""
    with open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                yield parse_line(line)


def verify_anchored(path: str | Path, anchor: Iterable[Link]) -> VerifyResult:
    """The file's own chain, then its head against the anchor's (`models.audit.check_anchor`)."""
    result = verify_audit(path)
    if not result.ok:
        return result
    hashes = {record.hash: record.seq for record in read_audit(path)}
    return check_anchor(hashes, result, anchored_head(hashes, anchor))


def refuse_if_behind(store: AuditStore, anchor: Iterable[Link]) -> None:
    """Refuse to continue a chain whose anchor holds a record after the file's last one:
    the file lost its tail, and appending would re-issue sequence numbers already anchored."""
    if store.last_hash == GENESIS_HASH:
        return
    for link in anchor:
        if link.prev_hash == store.last_hash:
            raise AuditStoreError(
                f"{store.path} ends at seq {store.last_seq}, but its anchor holds seq "
                f"{link.seq} after it: records were removed from the file's end. Run "
                "`quoteflow audit verify` and restore the file; the chain is not continued"
            )


def unpublished_tail(path: str | Path, anchor: Iterable[Link]) -> list[AuditRecord]:
    """The records of a file about to be continued that are not on its anchor, oldest first:
    appended, then lost from the producer's queue by a kill, so its writer publishes them
    again. Refuses (`AuditStoreError`) a file that must not be continued: its own chain is
    broken, or the anchor goes on past it (its tail was removed, or rewritten from there).

    A file none of whose records is on the anchor is refused too unless it holds one record
    only: its writer publishes its first record of every run before it acts (the executor),
    so more unpublished records mean a chain recomputed whole (or one older than the
    anchor's retention).
    """
    result = verify_anchored(path, anchor)
    if result.ok:
        return []
    if result.reason == "UNANCHORED_TAIL" or (result.reason == "NOT_ANCHORED"
                                              and result.records == 1):
        first = result.seq or 1
        return [record for record in read_audit(path) if record.seq >= first]
    raise AuditStoreError(
        f"{path} does not continue its published chain ({result}); "
        "the chain is not continued: run `quoteflow audit verify` and restore the file"
    )


def database_links(conn: psycopg.Connection, after: str | None = None) -> list[Link]:
    """The anchor in the database: every record's links, or only those following `after`.

    A database not migrated yet has no `audit` table: an empty anchor (nothing was stored,
    so nothing can be missing from a file; a file with records then fails as NOT_ANCHORED).
    """
    query = "SELECT seq, hash, prev_hash FROM audit"
    try:
        if after is not None:
            rows = conn.execute(f"{query} WHERE prev_hash = %s", (after,)).fetchall()
        else:
            rows = conn.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return []
    return [Link(*row) for row in rows]


def topic_links(config: KafkaConfig, timeout_s: float = 30.0) -> list[Link]:
    """The anchor on the `audit` topic: every record's links, read to the end as it was when
    called (needs a principal that may read the topic)."""
    topic = topic_name(config.prefix, "audit")
    # Assigned, never joined: the group id is librdkafka's requirement only. Its logs are off
    # (a close while the group coordinator's connection is still authenticating prints a
    # spurious error): a topic that cannot be read raises here instead.
    consumer = Consumer(config.client_settings() | {
        "group.id": "quoteflow-audit-verify", "enable.auto.commit": False, "log_level": 0})
    links: list[Link] = []
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        watermarks = consumer.get_watermark_offsets
        # Settled: on a new deployment the topic's leader may still be being elected.
        ends = {p: settled(lambda p=p: watermarks(TopicPartition(topic, p), timeout=timeout_s),
                           timeout_s)[1]
                for p in metadata.partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        remaining = {p: end for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} was not read to its end within {timeout_s:g} s")
            for message in consumer.consume(1000, 0.2):
                if message.error():
                    continue
                try:
                    record = parse_line(message.value() or b"")
                    links.append(Link(record.seq, record.hash, record.prev_hash))
                except msgspec.DecodeError:
                    pass  # not a record: no link to follow
            # The position, not the last record: a transaction's commit marker (the
            # executor publishes in transactions) takes an offset never delivered.
            for position in consumer.position([TopicPartition(topic, p) for p in remaining]):
                if position.offset >= remaining[position.partition]:
                    remaining.pop(position.partition)
    finally:
        consumer.close()
    return links


def _resume_chain(path: Path) -> AuditChain:
    tail = _last_line(path)
    if tail is None:
        return AuditChain()
    if not tail.endswith(b"\n"):
        raise AuditStoreError(
            f"{path} ends with a cut-off record; the store never rewrites a file: "
            "run `quoteflow audit verify` and start a new file"
        )
    try:
        record = parse_line(tail)
    except msgspec.DecodeError as error:
        raise AuditStoreError(f"{path}: the last record is unreadable ({error})") from None
    return AuditChain(record.seq, record.hash)


def _last_line(path: Path) -> bytes | None:
    """The file's last line with its newline (if any), reading backwards from the end."""
    with open(path, "rb") as file:
        end = file.seek(0, os.SEEK_END)
        if end == 0:
            return None
        tail = b""
        position = end
        while position > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            file.seek(position)
            tail = file.read(step) + tail
            # The newline that ends the previous line, not the one ending this line.
            start = tail.rfind(b"\n", 0, len(tail) - 1)
            if start >= 0:
                return tail[start + 1:]
        return tail


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
