"""Typed events onto their topics: idempotent, keyed, every failed delivery counted.

Idempotence (with acks=all) makes librdkafka's own retries exactly-once per partition and
in order, so a broker blip neither duplicates nor reorders an instrument's stream. Only
failed deliveries call back into Python (`delivery.report.only.error`): successes cost
nothing per message, and `pending` (still queued) plus `failed` account for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer

from connectors.kafka.config import KafkaConfig, KafkaUnavailable, connect_admin
from connectors.kafka.routing import routes
from connectors.kafka.topics import require_topics
from models.events import Event, encode

# Latency matters more than batch size: 1 ms of linger still fills batches at 20k events/s.
_PRODUCER_SETTINGS = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 1,
    "compression.type": "lz4",
    "delivery.report.only.error": True,
}


class KafkaDeliveryError(RuntimeError):
    """Messages were not delivered; the message says how many and the last error."""


@dataclass(slots=True)
class ProducerStats:
    produced: int = 0
    failed: int = 0
    last_error: str | None = None


class EventProducer:
    """Sends events to the topic and key their type routes to (`connectors.kafka.routing`).

    Construction checks the broker answers and every routed topic exists, so a wrong
    address or prefix fails at start-up, not after the first timeout.
    """

    __slots__ = ("_producer", "_routes", "stats")

    def __init__(self, config: KafkaConfig, **settings):
        self._routes = routes(config.prefix, config.account)
        require_topics(
            connect_admin(config),
            (topic for topic, _ in self._routes.values()),
            config.connect_timeout_s,
        )
        self.stats = ProducerStats()
        self._producer: Producer | None = Producer(
            config.client_settings() | _PRODUCER_SETTINGS | settings
            | {"on_delivery": self._on_failed_delivery}
        )

    def send(self, event: Event) -> None:
        try:
            topic, key_of = self._routes[type(event)]
        except KeyError:
            raise TypeError(f"no Kafka topic for {type(event).__name__}") from None
        self._produce(topic, key_of(event), encode(event))

    def send_to_every_partition(self, event: Event, timeout_s: float = 10.0) -> None:
        """`event` once into each partition of its topic: an end mark every reader sees,
        whichever partitions it reads."""
        topic = self._routes[type(event)][0]
        value = encode(event)
        for partition in self._producer.list_topics(topic, timeout_s).topics[topic].partitions:
            self._produce(topic, None, value, partition)

    def send_bytes(self, topic: str, key: str | None, value: bytes) -> None:
        """A record that is not an event (an audit line) to a full topic name."""
        self._produce(topic, key, value)

    def send_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.send(event)

    def _produce(self, topic: str, key: str | None, value: bytes, partition: int = -1) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, partition)
                break
            except BufferError:
                # Local queue full: wait for deliveries to make room (back-pressure).
                self._producer.poll(0.05)
        self.stats.produced += 1
        self._producer.poll(0)

    @property
    def pending(self) -> int:
        """Messages queued or in flight (none once closed)."""
        return len(self._producer) if self._producer is not None else 0

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every queued message; raise if any failed or some are still queued."""
        left = self._producer.flush(timeout_s)
        if left:
            raise KafkaUnavailable(f"{left} messages still undelivered after {timeout_s:g} s")
        if self.stats.failed:
            raise KafkaDeliveryError(
                f"{self.stats.failed} of {self.stats.produced} messages were not delivered; "
                f"last error: {self.stats.last_error}"
            )

    def close(self, timeout_s: float = 30.0) -> ProducerStats:
        """Deliver what is queued (raising as `flush` does), then let the client go.

        Letting go is what ends librdkafka's threads and connections: the client holds our
        delivery callback, a method of this object, so the two form a reference cycle that
        only the cyclic garbage collector would otherwise free, at some later moment, with
        the client reconnecting to its brokers until then. Dropping our reference frees it
        at once (`rd_kafka_destroy`, which also bounds the wait for what a failed flush left
        queued; confluent-kafka's own `Producer.close` flushes with no time limit)."""
        if self._producer is not None:  # a second close has nothing left to do
            try:
                self.flush(timeout_s)
            finally:
                self._producer = None
        return self.stats

    def _on_failed_delivery(self, error: KafkaError | None, message) -> None:
        if error is None:
            return
        self.stats.failed += 1
        self.stats.last_error = f"{message.topic()}: {error.str()}"
