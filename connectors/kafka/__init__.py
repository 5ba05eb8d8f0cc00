"""Kafka edge: topics, wire format, producer, consumer, Bytewax source and sink.

See docs/kafka.md for the topic table, keys, wire format and delivery guarantees.
"""

from connectors.kafka.bytewax_io import KafkaEventSink, KafkaEventSource
from connectors.kafka.config import (
    KafkaConfig,
    KafkaConfigError,
    KafkaUnavailable,
    connect_admin,
)
from connectors.kafka.consumer import EventConsumer, KafkaConsumeError
from connectors.kafka.producer import EventProducer, KafkaDeliveryError, ProducerStats
from connectors.kafka.routing import routes
from connectors.kafka.topics import (
    SPECS,
    TOPICS,
    MissingTopicsError,
    TopicMismatchError,
    TopicReport,
    TopicSpec,
    ensure_topics,
    require_topics,
    topic_name,
)
from connectors.kafka.wire import REASONS, SUPPORTED_VERSIONS, WireDecoder, dead_letter

__all__ = [
    "REASONS",
    "SPECS",
    "SUPPORTED_VERSIONS",
    "TOPICS",
    "EventConsumer",
    "EventProducer",
    "KafkaConfig",
    "KafkaConfigError",
    "KafkaConsumeError",
    "KafkaDeliveryError",
    "KafkaEventSink",
    "KafkaEventSource",
    "KafkaUnavailable",
    "MissingTopicsError",
    "ProducerStats",
    "TopicMismatchError",
    "TopicReport",
    "TopicSpec",
    "WireDecoder",
    "connect_admin",
    "dead_letter",
    "ensure_topics",
    "require_topics",
    "routes",
    "topic_name",
]
