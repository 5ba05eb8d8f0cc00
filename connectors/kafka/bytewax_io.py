"""The Bytewax sink on Kafka that speaks typed events (the sources are in
`connectors.kafka.flow_io`).

`KafkaEventSink` is quoteflow's one Kafka sink, an `EventProducer` per worker (Bytewax's
`KafkaSink` writes to one topic and has no delivery accounting). Its outage policy:

- At start-up a broker that does not answer, refused credentials or missing topics stop
  the flow at once (`EventProducer` checks them): a configuration error, not an outage.
- Once running, nothing is ever dropped: librdkafka never expires a queued message
  (`message.timeout.ms=0`) and reconnects with its own back-off, and idempotence keeps its
  retries free of duplicates and in order. `write_batch` blocks until the batch is on the
  broker, logging a warning every `retry_log_s` while it waits, so Bytewax never snapshots
  past output that is not on the broker (at-least-once; intents carry deterministic ids so
  the executor recognises a replayed one). Queue full blocks the producer (back-pressure).
- A delivery the broker refuses for good (not authorized, message too large) raises
  `KafkaDeliveryError`: waiting cannot fix it, and the flow restarts from its last snapshot,
  before the batch, once the cause is fixed.
"""

from __future__ import annotations

import logging

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.kafka.config import KafkaConfig, KafkaUnavailable
from connectors.kafka.producer import EventProducer
from models.events import Event

_log = logging.getLogger(__name__)


class _ProducerPartition(StatelessSinkPartition[Event | list[Event]]):
    def __init__(self, producer: EventProducer, retry_log_s: float):
        self._producer = producer
        self._retry_log_s = retry_log_s

    def write_batch(self, items: list[Event | list[Event]]) -> None:
        send = self._producer.send
        for item in items:
            if isinstance(item, list):
                for event in item:
                    send(event)
            else:
                send(item)
        while True:
            try:
                self._producer.flush(self._retry_log_s)
                return
            except KafkaUnavailable as waiting:
                _log.warning("Kafka sink waiting for the broker (nothing is dropped): %s",
                             waiting)

    def close(self) -> None:
        self._producer.close()


class KafkaEventSink(DynamicSink[Event | list[Event]]):
    """Writes events, or chunks (lists) of events, each to the topic its type routes to;
    waits out broker outages, never drops (the policy is in the module's docstring)."""

    def __init__(self, config: KafkaConfig, retry_log_s: float = 10.0):
        self._config = config
        self._retry_log_s = retry_log_s

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        producer = EventProducer(self._config, **{"message.timeout.ms": 0})
        return _ProducerPartition(producer, self._retry_log_s)
