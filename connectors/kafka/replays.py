"""Which replay a deployment's market topics hold, so replaying a recording twice never
doubles the market data.

A replay's id is a digest of its recordings' bytes, in order: the same files give the same
id, and the same events (replay is deterministic). The marker lives in Kafka beside the
data, as the committed offsets of a consumer group nothing consumes with, the deployment's
own (`replay_group`): for each partition of `md.book`, `md.bbo` and `md.trades`, the offset
is where the topic ended and the metadata says `started:<id>` (while publishing) or
`done:<id>`. So:

- topics empty → publish;
- the marker says `done:<id>` and nothing was added since → already there, publish nothing;
- anything else (another replay, live data, an interrupted replay) → refuse; `clear` (the
  CLI's `--fresh`) deletes the topics' records first, which needs DELETE on the topics.

Before, every deployment kept its marker in one shared group, `ingest.replays`, so one
deployment's ingest could join it and break another's marker commits. A deployment's group
without a marker yet takes the shared group's, once, if its user may still read it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from connectors.kafka.config import KafkaConfig, connect_admin, settled
from connectors.kafka.topics import topic_name
from connectors.kafka.transactions import role_scope

MARKET_TOPICS = ("md.book", "md.bbo", "md.trades")
ROLE = "ingest"
# Every deployment's marker group before they had their own (read once, to carry it over).
SHARED_REPLAY_GROUP = "ingest.replays"
_CHUNK = 1 << 20
Status = Literal["empty", "done", "other"]


@dataclass(frozen=True, slots=True)
class ReplayState:
    status: Status
    messages: int  # on the market topics now
    marker: str | None  # what the marker says, e.g. "done:3f2a…" (None: no marker)


def replay_group(prefix: str) -> str:
    """The marker group of the deployment with topic `prefix`: under ingest's scope there
    (`role_scope`), which its user alone is granted (connectors.kafka.acls)."""
    return f"{role_scope(ROLE, prefix)}replays"


def carry_shared_marker(config: KafkaConfig) -> int:
    """`ReplayMarker.carry_shared` for the deployment, if its market topics exist yet."""
    listed = connect_admin(config).list_topics(timeout=config.connect_timeout_s).topics
    if any(topic_name(config.prefix, t) not in listed for t in MARKET_TOPICS):
        return 0
    with ReplayMarker(config) as marker:
        return marker.carry_shared()


def replay_id(paths: Sequence[str | Path]) -> str:
    """A digest of the recordings' bytes, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as recording:
            while chunk := recording.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")  # file boundary: a+b and ab differ
    return digest.hexdigest()[:24]


class ReplayMarker:
    """Reads, writes and clears the marker of one deployment's market topics."""

    def __init__(self, config: KafkaConfig, topics: Iterable[str] = MARKET_TOPICS):
        self._config = config
        self._topics = [topic_name(config.prefix, t) for t in topics]
        self._consumer = self._group_client(replay_group(config.prefix))

    def _group_client(self, group: str) -> Consumer:
        return Consumer(
            self._config.client_settings() | {"group.id": group, "enable.auto.commit": False}
        )

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> ReplayMarker:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def _partitions(self) -> list[TopicPartition]:
        listed = connect_admin(self._config).list_topics(
            timeout=self._config.connect_timeout_s
        ).topics
        return [TopicPartition(topic, index)
                for topic in self._topics for index in sorted(listed[topic].partitions)]

    def _ends(self) -> dict[tuple[str, int], tuple[int, int]]:
        timeout = self._config.connect_timeout_s
        watermarks = self._consumer.get_watermark_offsets
        return {
            (p.topic, p.partition): settled(lambda p=p: watermarks(p, timeout=timeout), timeout)
            for p in self._partitions()
        }

    def state(self, replay: str) -> ReplayState:
        ends = self._ends()
        messages = sum(high - low for low, high in ends.values())
        committed = self._committed(self._consumer, ends)
        if not any(c.metadata for c in committed):
            committed = self._carry_shared(ends) or committed
        markers = {c.metadata or None for c in committed}
        marker = markers.pop() if len(markers) == 1 else None
        if messages == 0:
            return ReplayState("empty", 0, marker)
        untouched = all(c.offset == ends[(c.topic, c.partition)][1] for c in committed)
        if marker == f"done:{replay}" and untouched:
            return ReplayState("done", messages, marker)
        return ReplayState("other", messages, marker)

    def _committed(
        self, consumer: Consumer, ends: dict[tuple[str, int], tuple[int, int]]
    ) -> list[TopicPartition]:
        timeout = self._config.connect_timeout_s
        return settled(lambda: consumer.committed(
            [TopicPartition(t, p) for t, p in ends], timeout=timeout
        ), timeout)

    def _carry_shared(
        self, ends: dict[tuple[str, int], tuple[int, int]]
    ) -> list[TopicPartition]:
        """The shared group's marker of our topics, committed to our own group ([] when it
        has none, or our user may not read it: a deployment set up after the change). Read
        with the admin API: a consumer of a group it may not use waits for a coordinator
        until its timeout instead of being refused."""
        admin = connect_admin(self._config)
        wanted = [TopicPartition(t, p) for t, p in ends]
        (future,) = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(SHARED_REPLAY_GROUP, wanted)],
            request_timeout=self._config.connect_timeout_s).values()
        try:
            committed = future.result().topic_partitions
        except KafkaException as error:
            if error.args[0].code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                raise
            return []
        carried = [TopicPartition(c.topic, c.partition, c.offset, c.metadata)
                   for c in committed if c.metadata and c.offset >= 0]
        if carried:
            settled(lambda: self._consumer.commit(offsets=carried, asynchronous=False),
                    self._config.connect_timeout_s)
        return carried

    def carry_shared(self) -> int:
        """Our group takes the shared group's marker if it has none of its own yet (the
        upgrade, done by `quoteflow bus principals` before it narrows the grants, and by
        the first replay after); the partitions carried."""
        ends = self._ends()
        if any(c.metadata for c in self._committed(self._consumer, ends)):
            return 0
        return len(self._carry_shared(ends))

    def mark(self, replay: str, stage: Literal["started", "done"]) -> None:
        offsets = [TopicPartition(t, p, high, f"{stage}:{replay}")
                   for (t, p), (_, high) in self._ends().items()]
        settled(lambda: self._consumer.commit(offsets=offsets, asynchronous=False),
                 self._config.connect_timeout_s)

    def clear(self) -> int:
        """Delete every record of the market topics; the number deleted."""
        ends = self._ends()
        doomed = [TopicPartition(t, p, high) for (t, p), (low, high) in ends.items() if high > low]
        if doomed:
            admin = connect_admin(self._config)
            futures = admin.delete_records(doomed, request_timeout=self._config.connect_timeout_s)
            for future in futures.values():
                future.result()
        return sum(high - low for low, high in ends.values())


__all__ = [
    "SHARED_REPLAY_GROUP", "KafkaException", "ReplayMarker", "ReplayState",
    "carry_shared_marker", "replay_group", "replay_id",
]
