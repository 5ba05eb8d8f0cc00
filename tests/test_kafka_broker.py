"""The Kafka connectors against the real broker the test session starts."""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from decimal import Decimal
from itertools import islice

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from connectors.kafka import (
    SPECS,
    TOPICS,
    EventConsumer,
    EventProducer,
    KafkaConfig,
    KafkaDeliveryError,
    KafkaEventSource,
    KafkaUnavailable,
    MissingTopicsError,
    TopicMismatchError,
    connect_admin,
    ensure_topics,
    routes,
    topic_name,
)
from connectors.replay.recordings import Recordings
from models.events import DeadLetter, Trade, decode, encode
from tests import kafka_service
from tests.conftest import BINANCE_FILES
from tests.event_samples import sample_events
from tests.kafka_service import _free_port, fresh_prefix, new_deployment, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka_config(kafka_bootstrap: str) -> KafkaConfig:
    return new_deployment(kafka_bootstrap)


@pytest.fixture(scope="module")
def two_instruments(shared_data) -> list:
    """Real events of two instruments interleaved by receive time (spot and USD-M BTCUSDT)."""
    files = [f for f in BINANCE_FILES if f.name == "btcusdt_20240808.gz"]
    events = list(islice(Recordings(files).events(), 6000))
    assert len({e.key for e in events}) == 2
    return events


def _drain(consumer: EventConsumer, deadline_s: float = 30) -> list:
    events: list = []
    deadline = time.monotonic() + deadline_s
    while not consumer.at_end:
        assert time.monotonic() < deadline, "consumer did not reach the end of its topics"
        events.extend(consumer.poll())
    return events


def test_topics_are_created_with_their_specs(kafka_config):
    admin = connect_admin(kafka_config)
    names = {topic_name(kafka_config.prefix, s.name): s for s in TOPICS}
    metadata = admin.list_topics(timeout=10).topics
    for name, spec in names.items():
        assert len(metadata[name].partitions) == spec.partitions, name
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result()
        expected = names[resource.name].configs()
        assert {k: configs[k].value for k in expected} == expected, resource.name
    assert SPECS["control"].compact and names[f"{kafka_config.prefix}.control"].compact
    again = ensure_topics(admin, kafka_config.prefix)
    assert again.created == [] and again.mismatches == []
    assert sorted(again.existing) == sorted(names)


def test_topics_that_differ_from_their_specs_are_reported_not_changed(kafka_bootstrap):
    kafka_prefix = fresh_prefix()
    admin = connect_admin(kafka_service.kafka_config(kafka_bootstrap))
    book = topic_name(kafka_prefix, "md.book")
    control = topic_name(kafka_prefix, "control")
    futures = admin.create_topics([NewTopic(book, 2, 1), NewTopic(control, 1, 1)])
    for future in futures.values():
        future.result()
    with pytest.raises(TopicMismatchError) as raised:
        ensure_topics(admin, kafka_prefix)
    message = str(raised.value)
    assert f"{book}: 2 partitions, spec says 6" in message
    assert f"{control}: cleanup.policy=delete, spec says compact" in message
    report = ensure_topics(admin, kafka_prefix, strict=False)
    assert len(admin.list_topics(book, timeout=10).topics[book].partitions) == 2
    assert report.created == [] and len(report.mismatches) >= 2


def test_every_event_type_round_trips_keyed_and_in_order_per_key(kafka_config, two_instruments):
    sent = two_instruments + sample_events()
    producer = EventProducer(kafka_config)
    producer.send_all(sent)
    stats = producer.close()
    assert (stats.produced, stats.failed, producer.pending) == (len(sent), 0, 0)

    table = routes(kafka_config.prefix, kafka_config.account)
    expected_by_key: dict[tuple[str, bytes | None], list] = defaultdict(list)
    for event in sent:
        topic, key_of = table[type(event)]
        key = key_of(event)
        expected_by_key[topic, None if key is None else key.encode()].append(event)
    received_by_key: dict[tuple[str, bytes | None], list] = defaultdict(list)
    partitions_by_key: dict[tuple[str, bytes | None], set[int]] = defaultdict(set)
    for spec in TOPICS:
        topic = topic_name(kafka_config.prefix, spec.name)
        for partition, key, value in read_topic(kafka_config, spec.name):
            received_by_key[topic, key].append(decode(value))
            partitions_by_key[topic, key].add(partition)
    assert received_by_key == expected_by_key
    assert all(len(p) == 1 for p in partitions_by_key.values())  # one key, one partition
    assert {k for _, k in received_by_key} >= {b"binance:BTC/USDT", b"binanceusdm:BTC/USDT:USDT",
                                               b"acct-1"}


def test_consumer_group_resumes_after_its_committed_offsets(kafka_config, two_instruments):
    first, second = two_instruments[:1000], two_instruments[1000:1500]
    producer = EventProducer(kafka_config)
    producer.send_all(first)
    producer.flush()
    topics = ["md.book", "md.bbo", "md.trades"]
    consumer = EventConsumer(kafka_config, "persist", topics, eof=True)
    assert sorted(_drain(consumer), key=_order) == sorted(first, key=_order)
    consumer.commit()
    consumer.close()

    producer.send_all(second)
    producer.close()
    consumer = EventConsumer(kafka_config, "persist", topics, eof=True)
    rest = _drain(consumer)
    consumer.close()
    assert sorted(rest, key=_order) == sorted(second, key=_order)


def _order(event) -> tuple:
    return (event.receive_ts, type(event).__name__, event.seq or 0, str(event))


def test_malformed_messages_go_to_the_dead_letter_topic_with_reason_and_origin(kafka_config,
                                                                               two_instruments):
    trades = [e for e in two_instruments if type(e) is Trade][:20]
    producer = EventProducer(kafka_config)
    producer.send_all(trades)
    producer.flush()
    raw = Producer(kafka_config.client_settings())
    md_trades = topic_name(kafka_config.prefix, "md.trades")
    future_version = encode(trades[0]).replace(b'"v":1', b'"v":9')
    bad = [b"\xff\xfe binary", b'{"type":"tick","v":1}', future_version]
    for value in bad:
        raw.produce(md_trades, value, b"binance:BTC/USDT")
    raw.flush(10)

    consumer = EventConsumer(kafka_config, "ingest-check", ["md.trades"], eof=True)
    events = _drain(consumer)
    consumer.close()
    dead = [e for e in events if type(e) is DeadLetter]
    assert [e for e in events if type(e) is not DeadLetter] == trades
    assert consumer.dead_letters == len(dead) == 3
    producer.send_all(dead)  # a consumer forwards dead letters like any other output
    producer.close()

    letters = [decode(value) for _, _, value in read_topic(kafka_config, "deadletter")]
    assert [d.reason.split(":")[0] for d in letters] == ["undecodable", "unknown_type",
                                                          "schema_version"]
    assert all(d.source.startswith(f"kafka:{md_trades}/") for d in letters)
    assert letters[0].raw_encoding == "base64"
    assert [d.raw for d in letters[1:]] == [v.decode() for v in bad[1:]]


def test_failed_deliveries_are_counted_and_reported(kafka_config, two_instruments):
    admin = connect_admin(kafka_config)
    md_trades = topic_name(kafka_config.prefix, "md.trades")
    small = ConfigResource(
        ResourceType.TOPIC, md_trades,
        incremental_configs=[ConfigEntry("max.message.bytes", "10",
                                         incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([small]).values():
        future.result()
    deadline = time.monotonic() + 10  # the change reaches the broker through the metadata log
    while _topic_config(admin, md_trades, "max.message.bytes") != "10":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    producer = EventProducer(kafka_config)
    producer.send(next(e for e in two_instruments if type(e) is Trade))
    with pytest.raises(KafkaDeliveryError, match=r"1 of 1 messages were not delivered.*"
                                                  + md_trades):
        producer.close()
    assert producer.stats.failed == 1


def test_a_closed_producer_lets_its_librdkafka_client_go_at_once(kafka_config):
    """Not when the cyclic garbage collector gets round to it: the client holds the
    producer's delivery callback, a cycle, and until freed it keeps its broker connections
    (and logs its failed reconnects once the broker is gone)."""
    def clients() -> int:
        return sum(isinstance(o, Producer) for o in gc.get_objects())

    gc.disable()
    try:
        before = clients()
        producer = EventProducer(kafka_config)
        producer.send(Trade(venue="binance", symbol="BTC/USDT", exchange_ts=1, receive_ts=1,
                            price=Decimal(1), size=Decimal(1), side="buy"))
        assert clients() == before + 1
        producer.close()
        assert clients() == before
        assert producer.close().produced == 1  # a second close is harmless
    finally:
        gc.enable()


def _topic_config(admin, topic: str, name: str) -> str:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return future.result()[name].value


def test_missing_topics_are_a_start_up_error(kafka_bootstrap):
    prefix = fresh_prefix()
    config = kafka_service.kafka_config(kafka_bootstrap, prefix=prefix)
    with pytest.raises(MissingTopicsError, match=rf"lacks topics \['{prefix}\.control"):
        EventProducer(config)
    with pytest.raises(MissingTopicsError, match="ensure_topics"):
        KafkaEventSource(config, ["md.book"]).list_parts()


def test_an_unreachable_broker_is_a_clear_start_up_error():
    config = KafkaConfig(bootstrap=f"127.0.0.1:{_free_port()}", connect_timeout_s=0.5)
    message = rf"cannot reach Kafka at {config.bootstrap} within 0.5 s"
    with pytest.raises(KafkaUnavailable, match=message):
        EventProducer(config)
    with pytest.raises(KafkaUnavailable, match=message):
        EventConsumer(config, "g", ["md.book"])
    with pytest.raises(KafkaUnavailable, match=message):
        KafkaEventSource(config, ["md.book"]).list_parts()
    with pytest.raises(KafkaUnavailable, match=message):
        connect_admin(config)
