"""The bytes on quoteflow's topics: msgspec JSON of `models.events` (`models.events.encode`,
decimals as strings), and decoding them back with every failure turned into a dead letter.

Chosen by measurement (docs/kafka.md): on real Binance events msgspec JSON and MessagePack
encode and decode at the same speed (decoding is dominated by parsing decimals, which both
carry as strings) and compress to the same size in producer batches; JSON is readable with
any Kafka tool and is what the published JSON Schemas describe.

Every message carries its schema version in the body (`v`), so no per-message header is
needed. Decoding never raises: what cannot be read becomes a `DeadLetter` whose reason
starts with one of REASONS and which keeps the original bytes and where they came from.
"""

from __future__ import annotations

import base64
import hashlib
import logging

import msgspec

from connectors.kafka.book_wire import BookDecoder
from connectors.kafka.topics import TOPICS, topic_name
from models.audit import AuditRecord, parse_line
from models.event_bounds import problem
from models.events import (
    CONTROL_SCHEMA_VERSION,
    SCHEMA_VERSION,
    AnyEvent,
    ControlCommand,
    DeadLetter,
    Event,
)

SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION, CONTROL_SCHEMA_VERSION})
# The versions each type has had; a type not listed has only SCHEMA_VERSION.
_TYPE_VERSIONS: dict[type, frozenset[int]] = {
    ControlCommand: frozenset({SCHEMA_VERSION, CONTROL_SCHEMA_VERSION}),
}
_BASE_VERSIONS = frozenset({SCHEMA_VERSION})

# Dead-letter reason prefixes, in the order decoding checks them.
EMPTY = "empty"
UNDECODABLE = "undecodable"
UNKNOWN_TYPE = "unknown_type"
INVALID = "invalid"
SCHEMA_VERSION_REASON = "schema_version"
WRONG_TOPIC = "wrong_topic"
OVERSIZED = "oversized"
OUT_OF_BOUNDS = "out_of_bounds"
REASONS = (EMPTY, OVERSIZED, UNDECODABLE, UNKNOWN_TYPE, INVALID, OUT_OF_BOUNDS,
           SCHEMA_VERSION_REASON, WRONG_TOPIC)

# Largest message value read per topic; the rest go to the dead-letter topic unread.
# An operator's command is a few hundred bytes: 16 KiB leaves room and keeps the audit
# record of a command (which embeds it) far below the broker's 1 MiB message limit.
MAX_VALUE_BYTES = 1024 * 1024
MAX_VALUE_BYTES_BY_TOPIC = {"control": 16 * 1024}
# A dead letter keeps at most this much of the offending value, so it can always be
# published; the reason then gives the full length and its SHA-256.
MAX_DEAD_LETTER_BYTES = 64 * 1024

_log = logging.getLogger(__name__)
_TAG_ERROR_SUFFIX = "- at `$.type`"


class WireDecoder:
    """Message values → events, checking each event belongs on the topic it came from.

    One decoder serves every topic of one deployment (`prefix`); a topic quoteflow does not
    own accepts any event type. `dead_letters` counts what was turned into dead letters.
    """

    __slots__ = ("_allowed", "_audit_topic", "_book_topic", "_decode", "_decode_book",
                 "_max_bytes", "dead_letters")

    def __init__(self, prefix: str = ""):
        self._decode = msgspec.json.Decoder(AnyEvent).decode
        # md.book with `Levels` sides, or None when unsure (connectors.kafka.book_wire)
        self._decode_book = BookDecoder().decode
        self._book_topic = topic_name(prefix, "md.book")
        self._audit_topic = topic_name(prefix, "audit")
        self._allowed = {
            topic_name(prefix, spec.name): frozenset(spec.event_types) for spec in TOPICS
        }
        self._max_bytes = {
            topic_name(prefix, name): size for name, size in MAX_VALUE_BYTES_BY_TOPIC.items()
        }
        self.dead_letters = 0

    def decode(
        self,
        value: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        receive_ts: int | None = None,
    ) -> Event | AuditRecord:
        try:
            return self._checked(value, topic)
        except _Rejected as exc:
            self.dead_letters += 1
            letter = dead_letter(str(exc), value or b"", topic, partition, offset, receive_ts)
            # Powers of two: a flood of bad input logs a few lines, not one per message.
            if self.dead_letters & (self.dead_letters - 1) == 0:
                _log.warning("%d dead letters so far; latest from %s: %s",
                             self.dead_letters, letter.source, letter.reason)
            return letter

    def _checked(self, value: bytes | None, topic: str) -> Event | AuditRecord:
        if not value:
            raise _Rejected(EMPTY, "message has no value")
        limit = self._max_bytes.get(topic, MAX_VALUE_BYTES)
        if len(value) > limit:
            raise _Rejected(OVERSIZED, f"{len(value)} bytes, at most {limit} on {topic}")
        if topic == self._audit_topic:
            # The audit trail carries hash-chained records, hashed over their canonical JSON.
            try:
                record = parse_line(value)
            except msgspec.DecodeError as exc:
                raise _Rejected(INVALID, str(exc)) from None
            _check_bounds(record)
            return record
        if topic == self._book_topic:
            book = self._decode_book(value)
            if book is not None:
                # Every field; a `Levels` bounded its own numbers, its length is checked here.
                _check_bounds(book)
                return self._belongs(book, topic)
        try:
            event = self._decode(value)
        except msgspec.ValidationError as exc:
            message = str(exc)
            raise _Rejected(
                UNKNOWN_TYPE if message.endswith(_TAG_ERROR_SUFFIX) else INVALID, message
            ) from None
        except msgspec.DecodeError as exc:
            raise _Rejected(UNDECODABLE, str(exc)) from None
        _check_bounds(event)
        return self._belongs(event, topic)

    def _belongs(self, event: Event, topic: str) -> Event:
        versions = _TYPE_VERSIONS.get(type(event), _BASE_VERSIONS)
        if event.v not in versions:
            raise _Rejected(
                SCHEMA_VERSION_REASON,
                f"v={event.v}, this build reads {type(event).__name__} {sorted(versions)}",
            )
        allowed = self._allowed.get(topic)
        if allowed and type(event) not in allowed:
            raise _Rejected(WRONG_TOPIC, f"{type(event).__name__} does not belong on {topic}")
        return event


def _check_bounds(event: Event | AuditRecord) -> None:
    reason = problem(event)
    if reason:
        raise _Rejected(OUT_OF_BOUNDS, reason)


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")


def dead_letter(
    reason: str,
    value: bytes,
    topic: str,
    partition: int,
    offset: int,
    receive_ts: int | None = None,
) -> DeadLetter:
    """A dead letter for one Kafka message, keeping its bytes exactly (a prefix of them if
    they are longer than MAX_DEAD_LETTER_BYTES, which the reason then says)."""
    source = f"kafka:{topic}/{partition}@{offset}"
    if len(value) > MAX_DEAD_LETTER_BYTES:
        reason = (f"{reason} (raw: the first {MAX_DEAD_LETTER_BYTES} of {len(value)} bytes, "
                  f"sha256 {hashlib.sha256(value).hexdigest()})")
        value = value[:MAX_DEAD_LETTER_BYTES]
    try:
        return DeadLetter(source=source, reason=reason, raw=value.decode(),
                          receive_ts=receive_ts)
    except UnicodeDecodeError:
        return DeadLetter(source=source, reason=reason, raw=base64.b64encode(value).decode(),
                          receive_ts=receive_ts, raw_encoding="base64")
