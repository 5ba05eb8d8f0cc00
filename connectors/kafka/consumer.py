"""Typed events from Kafka for processes outside Bytewax (executor, persist, tools).

Offsets are committed by the caller, after it has acted on what it read
(`enable.auto.commit=false`): a crash between reading and committing re-reads, it never
skips. Undecodable messages come back as `DeadLetter` events in their place, so the caller
forwards them to the dead-letter topic with the rest of its output.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connectors.kafka.config import KafkaConfig, connect_admin
from connectors.kafka.topics import topic_name
from connectors.kafka.wire import WireDecoder
from models.events import Event


class KafkaConsumeError(RuntimeError):
    """The broker reported an error for a partition (not a bad message: those dead-letter)."""


class KafkaFenced(RuntimeError):
    """Another process took this one's place: a consumer with its `group.instance.id` or a
    producer with its `transactional.id` (`connectors.kafka.membership`). It must stop."""


class EventConsumer:
    """A consumer-group member reading `topics` (base names; the prefix is added).

    `eof=True` makes `at_end` true once every assigned partition has been read to its end,
    for replays and tests that stop when the topic is drained.
    """

    def __init__(
        self,
        config: KafkaConfig,
        group_id: str,
        topics: Iterable[str],
        *,
        from_beginning: bool = True,
        eof: bool = False,
        **settings,
    ):
        connect_admin(config)
        self._decoder = WireDecoder(config.prefix)
        self._consumer = Consumer(
            config.client_settings()
            | {
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest" if from_beginning else "latest",
                "enable.partition.eof": eof,
            }
            | settings
        )
        self._prefix = config.prefix
        self._member = (group_id, settings.get("group.instance.id"))
        self._topics = [topic_name(config.prefix, t) for t in topics]
        self._consumer.subscribe(
            self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self._at_end: set[tuple[str, int]] = set()
        self._assigned: set[tuple[str, int]] = set()

    @property
    def dead_letters(self) -> int:
        return self._decoder.dead_letters

    @property
    def at_end(self) -> bool:
        return bool(self._assigned) and self._at_end >= self._assigned

    def caught_up(self, topic: str) -> bool:
        """Every assigned partition of `topic` (base name) has been read to its end."""
        name = topic_name(self._prefix, topic)
        partitions = {p for p in self._assigned if p[0] == name}
        return bool(partitions) and partitions <= self._at_end

    def poll(self, max_messages: int = 1000, timeout_s: float = 0.1) -> list[Event]:
        """Up to `max_messages` events in partition order; [] when nothing arrived in time."""
        events = []
        decode = self._decoder.decode
        consume = self._consumer.consume
        # A batch waits out the whole timeout unless it fills (librdkafka's consume_batch):
        # take what is here, else wait for one message only and then take what came with it,
        # so a lone intent is read when it arrives, not up to `timeout_s` later.
        messages = consume(max_messages, 0)
        if not messages:
            messages = consume(1, timeout_s)
            if messages and max_messages > 1:
                messages += consume(max_messages - 1, 0)
        now_ns = time.time_ns()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add((message.topic(), message.partition()))
                    continue
                if error.code() in (KafkaError._FATAL, KafkaError.FENCED_INSTANCE_ID):
                    # A static member's only fatal error: its instance id joined elsewhere.
                    group, instance = self._member
                    raise KafkaFenced(
                        f"another process joined consumer group {group} as {instance}, the "
                        f"instance id of this one, and took its partitions: this one stops "
                        f"({error.str()})")
                raise KafkaConsumeError(
                    f"consuming {message.topic()} [{message.partition()}]: {error.str()}"
                )
            self._at_end.discard((message.topic(), message.partition()))
            events.append(
                decode(message.value(), message.topic(), message.partition(), message.offset(),
                       now_ns)
            )
        return events

    def commit(self) -> None:
        """Commit the position after everything `poll` has returned (synchronously)."""
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            # Nothing consumed since the last commit is not a failure.
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def positions(self) -> list[TopicPartition]:
        """The position after everything `poll` has returned, per assigned partition read
        from (what a transactional producer commits for this group)."""
        assigned = self._consumer.assignment()
        return [p for p in self._consumer.position(assigned) if p.offset >= 0] if assigned else []

    def group_metadata(self) -> object:
        return self._consumer.consumer_group_metadata()

    def close(self) -> None:
        self._consumer.close()

    def _on_assign(self, _consumer, partitions) -> None:
        self._assigned.update((p.topic, p.partition) for p in partitions)

    def _on_revoke(self, _consumer, partitions) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        self._assigned -= revoked
        self._at_end -= revoked
