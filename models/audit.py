"""Hash-chained audit records and their verification, as pure functions of bytes.

Each record carries `seq` (1, 2, 3, ...), `ts` (ns), `actor` (who: a service or a user),
`action` (what: `intent`, `risk_decision`, `order_request`, `fill`, `control`, ...), a JSON
`payload`, `prev_hash` (the previous record's hash; 64 zeros for the first) and

    hash = sha256(prev_hash ‖ canonical(record without hash))

where canonical JSON has sorted keys, no whitespace, UTF-8, and Decimals as strings, so any
reader can recompute it from the stored line. A chain proves that nothing in it was changed,
removed or reordered; that nothing was cut off its end, that it was not recomputed whole,
and that nothing was appended by someone else needs an anchor: the records as they were
published when appended (the `audit` topic, the database's `audit` table). `check_anchor`
compares a file's chain with its anchor; `verify_lines(expected_head=...)` takes a single
hash kept elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import msgspec

from models.events import to_builtins

GENESIS_HASH = "0" * 64

_canonical = msgspec.json.Encoder(order="sorted", decimal_format="string")


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seq: int
    ts: int
    actor: str
    action: str
    payload: Any
    prev_hash: str
    hash: str


class _SeqOnly(msgspec.Struct):
    seq: int


_record_decoder = msgspec.json.Decoder(AuditRecord)
_seq_decoder = msgspec.json.Decoder(_SeqOnly)


def canonical(value: Any) -> bytes:
    return _canonical.encode(value)


def record_hash(seq: int, ts: int, actor: str, action: str, payload: Any, prev_hash: str) -> str:
    body = canonical(
        {"action": action, "actor": actor, "payload": payload, "prev_hash": prev_hash,
         "seq": seq, "ts": ts}
    )
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def encode_line(record: AuditRecord) -> bytes:
    """The stored form: one canonical JSON object and a newline."""
    return canonical(record) + b"\n"


class AuditChain:
    """Makes the next records of a chain; `last_seq`/`last_hash` resume an existing one."""

    __slots__ = ("last_hash", "last_seq")

    def __init__(self, last_seq: int = 0, last_hash: str = GENESIS_HASH) -> None:
        self.last_seq = last_seq
        self.last_hash = last_hash

    def append(self, ts: int, actor: str, action: str, payload: Any) -> AuditRecord:
        # Plain JSON values from here on (Decimals as strings, events as dicts), so the
        # record hashes the same bytes that a reader will decode from the stored line.
        # Depth events from the decoders carry `Levels`, written as the pairs they stand for.
        payload = to_builtins(payload, str_keys=True)
        seq = self.last_seq + 1
        digest = record_hash(seq, ts, actor, action, payload, self.last_hash)
        record = AuditRecord(
            seq=seq, ts=ts, actor=actor, action=action, payload=payload,
            prev_hash=self.last_hash, hash=digest,
        )
        self.last_seq = seq
        self.last_hash = digest
        return record


def parse_line(line: bytes) -> AuditRecord:
    """Raises msgspec.DecodeError (a subclass of ValueError) for anything but a record."""
    return _record_decoder.decode(line)


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """`records` counts the intact records before the first break (all of them when ok).

    `reason` is one of BAD_HASH, BAD_PREV_LINK, SEQ_GAP, REORDERED, SEQ_REPEAT, UNPARSEABLE,
    TRUNCATED, BAD_HEAD, UNREADABLE, and against an anchor NOT_ANCHORED, CUT_BEFORE_ANCHOR,
    UNANCHORED_TAIL; `line` is 1-based.
    """

    ok: bool
    records: int
    last_hash: str
    line: int | None = None
    seq: int | None = None
    reason: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.ok:
            anchored = f", {self.detail}" if self.detail else ""
            return f"OK: {self.records} records, last hash {self.last_hash}{anchored}"
        where = f"line {self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        return f"BROKEN at {where}: {self.reason}: {self.detail}"


def verify_lines(lines: Iterable[bytes], expected_head: str | None = None) -> VerifyResult:
    """Check a chain line by line (each line with its newline) and name the first break."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    rest = iter(lines)

    def broken(line: int, seq: int | None, reason: str, detail: str) -> VerifyResult:
        return VerifyResult(
            ok=False, records=expected_seq - 1, last_hash=prev_hash, line=line, seq=seq,
            reason=reason, detail=detail,
        )

    for line_no, raw in enumerate(rest, 1):
        if not raw.endswith(b"\n"):
            return broken(
                line_no, None, "TRUNCATED",
                f"the last line stops after {len(raw)} bytes without a newline: a cut-off write",
            )
        try:
            record = parse_line(raw)
        except msgspec.DecodeError as error:
            return broken(line_no, None, "UNPARSEABLE", f"not an audit record: {error}")
        seq = record.seq
        if seq > expected_seq:
            found_at = _find_seq(rest, expected_seq, line_no)
            if found_at is None:
                return broken(
                    line_no, seq, "SEQ_GAP",
                    f"expected seq {expected_seq}: records {expected_seq}..{seq - 1} are missing",
                )
            return broken(
                line_no, seq, "REORDERED",
                f"expected seq {expected_seq}, which comes later, at line {found_at}",
            )
        if seq < expected_seq:
            return broken(
                line_no, seq, "SEQ_REPEAT", f"seq {seq} again where {expected_seq} belongs"
            )
        if record.prev_hash != prev_hash:
            return broken(
                line_no, seq, "BAD_PREV_LINK",
                f"prev_hash {record.prev_hash[:16]}… is not the hash of record {seq - 1} "
                f"({prev_hash[:16]}…)",
            )
        digest = record_hash(
            seq, record.ts, record.actor, record.action, record.payload, record.prev_hash
        )
        if record.hash != digest:
            return broken(
                line_no, seq, "BAD_HASH",
                f"stored hash {record.hash[:16]}… but the content hashes to {digest[:16]}…: "
                "the record was changed",
            )
        prev_hash = digest
        expected_seq += 1
    if expected_head is not None and prev_hash != expected_head:
        return broken(
            expected_seq, None, "BAD_HEAD",
            f"the chain ends at hash {prev_hash[:16]}…, not the expected {expected_head[:16]}…: "
            "records were removed from its end or it was rewritten",
        )
    return VerifyResult(ok=True, records=expected_seq - 1, last_hash=prev_hash)


def _find_seq(lines: Iterator[bytes], seq: int, line_no: int) -> int | None:
    """The line number where `seq` appears further on, reading only the seq of each line."""
    for offset, raw in enumerate(lines, 1):
        try:
            if _seq_decoder.decode(raw).seq == seq:
                return line_no + offset
        except msgspec.DecodeError:
            continue
    return None


class Link(NamedTuple):
    """What an anchor keeps of a record: enough to follow a chain."""

    seq: int
    hash: str
    prev_hash: str


def anchored_head(file_hashes: Mapping[str, int], anchor: Iterable[Link]) -> Link | None:
    """The furthest record of the file's chain on the anchor, or None if none is there.

    Several chains share an anchor (the executor's, the API's); the file's is found by its
    hashes, and followed forward on the anchor by prev_hash links, so the anchor's head of
    this chain is found even where the file stops early.
    """
    children: dict[str, Link] = {}
    start: Link | None = None
    for link in anchor:
        if link.prev_hash != GENESIS_HASH:  # every chain starts there: no link to follow
            children[link.prev_hash] = link
        if link.hash in file_hashes and (start is None or link.seq > start.seq):
            start = link
    head = start
    while head is not None and head.hash in children:
        head = children[head.hash]
    return head


def check_anchor(
    file_hashes: Mapping[str, int], file_result: VerifyResult, head: Link | None
) -> VerifyResult:
    """The verdict on an intact file chain (`file_result.ok`) against its anchored head.

    Reasons: NOT_ANCHORED (none of its records was published: never sent, or the whole chain
    recomputed), CUT_BEFORE_ANCHOR (the anchor goes on past the file: its tail was removed,
    or rewritten from there), UNANCHORED_TAIL (records after the anchored head: appended by
    someone else, or not yet published).
    """
    if not file_result.ok:
        return file_result
    records = file_result.records

    def broken(reason: str, detail: str, seq: int | None = None) -> VerifyResult:
        return VerifyResult(ok=False, records=records, last_hash=file_result.last_hash,
                            line=seq, seq=seq, reason=reason, detail=detail)

    if head is None:
        if records == 0:
            return file_result
        return broken("NOT_ANCHORED", f"none of the file's {records} records is on the anchor: "
                      "never published, or the chain was recomputed")
    if head.hash not in file_hashes:
        return broken(
            "CUT_BEFORE_ANCHOR",
            f"the anchor's chain goes on to seq {head.seq} ({head.hash[:16]}…) but the file "
            f"ends at seq {records}: records were removed from its end, or it was rewritten",
            records)
    if head.seq < records:
        return broken(
            "UNANCHORED_TAIL",
            f"records {head.seq + 1}..{records} are not on the anchor (its head is seq "
            f"{head.seq}): appended by someone else, or never published", head.seq + 1)
    return VerifyResult(ok=True, records=records, last_hash=file_result.last_hash,
                        detail=f"anchored at seq {head.seq}")
