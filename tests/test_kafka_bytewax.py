"""A Bytewax flow from Kafka to Kafka on the real broker: typed events in, typed events out."""

from __future__ import annotations

from collections import defaultdict
from itertools import islice

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main
from confluent_kafka import Producer

from connectors.kafka import (
    EventProducer,
    KafkaConfig,
    KafkaEventSink,
    KafkaEventSource,
    topic_name,
)
from connectors.replay.recordings import Recordings
from models.events import DeadLetter, Event, decode, encode
from tests.conftest import BINANCE_FILES
from tests.kafka_service import new_deployment, read_topic

pytestmark = pytest.mark.integration

MARKET_TOPICS = ["md.book", "md.bbo", "md.trades"]


def copy_flow(source_config: KafkaConfig, sink_config: KafkaConfig) -> Dataflow:
    """Market data of one deployment into another, counting events per chunk on the way."""
    flow = Dataflow("kafka_copy")
    chunks = op.input("md", flow, KafkaEventSource(source_config, MARKET_TOPICS, tail=False))
    op.output("out", chunks, KafkaEventSink(sink_config))
    return flow


def test_flow_reads_typed_events_and_writes_them_routed_with_dead_letters(kafka_bootstrap,
                                                                          shared_data):
    upstream, downstream = new_deployment(kafka_bootstrap), new_deployment(kafka_bootstrap)
    files = [f for f in BINANCE_FILES if f.name == "ethusdt_20240808.gz"]
    events = list(islice(Recordings(files).events(), 4000))
    producer = EventProducer(upstream)
    producer.send_all(events)
    producer.flush()
    # Malformed input in the middle of a stream must not stop the flow.
    md_bbo = topic_name(upstream.prefix, "md.bbo")
    raw = Producer(upstream.client_settings())
    bad = [b"garbage", encode(events[-1]).replace(b'"v":1', b'"v":3'), b""]
    for value in bad:
        raw.produce(md_bbo, value, b"binance:ETH/USDT")
    raw.flush(10)
    producer.send_all(events[:10])
    producer.close()

    run_main(copy_flow(upstream, downstream))

    sent_by_key: dict[str, list[Event]] = defaultdict(list)
    for event in events + events[:10]:
        sent_by_key[f"{type(event).__name__}|{event.key}"].append(event)
    copied_by_key: dict[str, list[Event]] = defaultdict(list)
    for name in MARKET_TOPICS:
        for _, key, value in read_topic(downstream, name):
            event = decode(value)
            assert key.decode() == event.key
            copied_by_key[f"{type(event).__name__}|{event.key}"].append(event)
    assert copied_by_key == sent_by_key  # every event, in order per instrument and type

    letters = [decode(value) for _, _, value in read_topic(downstream, "deadletter")]
    assert all(type(d) is DeadLetter for d in letters)
    assert [d.reason.split(":")[0] for d in letters] == ["undecodable", "schema_version", "empty"]
    assert all(d.source.startswith(f"kafka:{md_bbo}/") for d in letters)
    assert letters[1].raw == bad[1].decode()
