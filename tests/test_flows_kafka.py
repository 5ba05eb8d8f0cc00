"""The flows on the real broker: the quote flow's intents equal the in-process sessions' on
recorded Binance data, with 1 worker, 2 workers and 2 processes; arbitrage and predict run
on Kafka; bad input and bad configuration are handled."""

from __future__ import annotations

from decimal import Decimal

import pytest
from bytewax.testing import run_main
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from connectors.kafka import KafkaConfig, KafkaUnavailable, MissingTopicsError, topic_name
from connectors.kafka.flow_io import CoPartitionedSource, NotCoPartitionedError
from connectors.venues.market_cache import instrument_for
from flows.processes import build_flow, build_quote_kafka_flow, quote_options
from models.events import (
    ArbSignal,
    DeadLetter,
    Fill,
    OrderEvent,
    OrderIntent,
    Prediction,
    decode,
)
from models.quote_session import QuoteSessions
from quoteflow.config import Config, QuoteConfig
from tests.flow_runs import (
    OPTIONS,
    by_id,
    expected_intents,
    intents_on,
    publish,
    recorded_events,
    start_flow,
    write_config,
)
from tests.kafka_service import _free_port, kafka_config, new_deployment, read_topic

pytestmark = pytest.mark.integration

EVENTS = 20_000


@pytest.fixture(scope="module")
def events(shared_data):
    return recorded_events(EVENTS)


@pytest.fixture(scope="module")
def expected(events):
    intents = expected_intents(events)
    assert len(intents) > 100  # the recording makes the strategy requote often
    return intents


def assert_same_intents(actual: list[OrderIntent], expected: list[OrderIntent]) -> None:
    assert len(actual) == len(expected)
    assert by_id(actual) == by_id(expected)
    # Per instrument, in the order they were decided (one key, one partition).
    for key in {i.key for i in expected}:
        assert [i.intent_id for i in actual if i.key == key] == [
            i.intent_id for i in expected if i.key == key
        ]


def test_quote_flow_on_kafka_gives_the_in_process_intents(kafka_bootstrap, events, expected):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    run_main(build_quote_kafka_flow(config, OPTIONS, tail=False))
    assert_same_intents(intents_on(config), expected)
    keys = {key for _, key, _ in read_topic(config, "orders.intents")}
    assert keys == {b"binance:BTC/USDT", b"binance:ETH/USDT"}


def test_two_workers_give_the_same_intents(kafka_bootstrap, events, expected, tmp_path):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    flow = start_flow(write_config(tmp_path / "q.toml", config), "--workers", "2",
                      "--until-end", log=tmp_path / "flow.log")
    assert flow.wait(timeout=120) == 0, (tmp_path / "flow.log").read_text()
    assert_same_intents(intents_on(config), expected)


def test_two_processes_give_the_same_intents(kafka_bootstrap, events, expected, tmp_path):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    config_file = write_config(tmp_path / "q.toml", config)
    addresses = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    cluster = [
        start_flow(config_file, "--process-id", str(i), *(a for addr in addresses
                   for a in ("--addresses", addr)), "--until-end", log=tmp_path / f"p{i}.log")
        for i in range(2)
    ]
    for i, process in enumerate(cluster):
        assert process.wait(timeout=120) == 0, (tmp_path / f"p{i}.log").read_text()
    assert_same_intents(intents_on(config), expected)


def test_fills_and_predictions_reach_their_instrument(kafka_bootstrap, events):
    """Fills (keyed by account on Kafka) move inventory; predictions skew, when weighted."""
    config = new_deployment(kafka_bootstrap)
    head = events[:6000]
    publish(config, head)
    btc = next(e for e in head if e.symbol == "BTC/USDT")
    fill = Fill(venue=btc.venue, symbol=btc.symbol, ts=btc.receive_ts, client_order_id="c1",
                trade_id="t1", side="buy", price=Decimal("61000"), size=Decimal("0.001"),
                fee=Decimal(0), fee_currency="USDT", liquidity="maker")
    ack = OrderEvent(venue=btc.venue, symbol=btc.symbol, ts=btc.receive_ts, kind="ack",
                     client_order_id="c1", side="buy", price=Decimal("61000"),
                     size=Decimal("0.001"))
    # The executor re-publishing a fill after its own restart must not count twice.
    publish(config, [ack, fill, fill])
    options = quote_options(Config(quote=QuoteConfig(prediction_weight=1.0)))
    run_main(build_quote_kafka_flow(config, options, tail=False))
    intents = intents_on(config)
    assert intents
    btc_ids = [i.intent_id for i in intents if i.key == btc.key]
    # Every BTC intent after the fill was read says so in its id (":1:0"), and none counts two.
    assert btc_ids[-1].endswith(":1:0")
    assert not any(i.endswith(":2:0") for i in btc_ids)


def test_prediction_weight_shifts_the_quotes(events):
    """A forecast of an up-move raises the reservation price; at weight 0 it changes nothing."""
    btc = [e for e in events if e.symbol == "BTC/USDT"]
    up = Prediction(venue=btc[0].venue, symbol=btc[0].symbol, ts=btc[0].receive_ts,
                    horizon_ns=10**15, model="logreg", prob_up=0.9, prob_down=0.05,
                    expected_move=5.0)

    def last_intent(weight: float) -> OrderIntent:
        options = quote_options(Config(quote=QuoteConfig(prediction_weight=weight)))
        session = QuoteSessions(options, instrument_for)(btc[0].key)
        session.on_event(up)
        return [i for e in btc for i in session.on_event(e)][-1]

    plain, skewed = last_intent(0.0), last_intent(1.0)
    assert plain.bids and plain.asks
    assert skewed.bids[0].price > plain.bids[0].price
    assert skewed.asks[0].price > plain.asks[0].price
    unweighted = expected_intents(btc)[-1]  # the same stream with no prediction at all
    assert (plain.bids, plain.asks) == (unweighted.bids, unweighted.asks)


def test_bad_messages_become_dead_letters_and_the_flow_goes_on(kafka_bootstrap, events, expected):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    raw = Producer(config.client_settings())
    raw.produce(topic_name(config.prefix, "md.trades"), b"not json", b"binance:BTC/USDT")
    raw.produce(topic_name(config.prefix, "orders.events"), b'{"type":"fill"}', b"acct-1")
    raw.flush(10)
    run_main(build_quote_kafka_flow(config, OPTIONS, tail=False))
    assert_same_intents(intents_on(config), expected)
    letters = [decode(v) for _, _, v in read_topic(config, "deadletter")]
    assert all(type(d) is DeadLetter for d in letters)
    assert sorted(d.reason.split(":")[0] for d in letters) == ["invalid", "undecodable"]


def test_arbitrage_and_predict_flows_run_on_kafka(kafka_bootstrap, events):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    settings = Config(kafka=config)
    run_main(build_flow("arbitrage", settings, tail=False))
    run_main(build_flow("predict", settings, tail=False))
    # Two spot instruments of different assets: no pair to join, so no arb signal.
    assert read_topic(config, "signals.arb") == []
    predictions = [decode(v) for _, _, v in read_topic(config, "signals.pred")]
    assert predictions and all(type(p) is Prediction for p in predictions)
    assert {p.key for p in predictions} == {"binance:BTC/USDT", "binance:ETH/USDT"}
    assert not any(isinstance(p, ArbSignal) for p in predictions)


def test_configuration_errors_are_clear(kafka_bootstrap):
    config = new_deployment(kafka_bootstrap)
    with pytest.raises(NotCoPartitionedError, match="equal partition counts"):
        CoPartitionedSource(config, ["md.book", "orders.events"]).list_parts()
    with pytest.raises(MissingTopicsError):
        CoPartitionedSource(kafka_config(kafka_bootstrap, prefix="absent"),
                            ["md.book"]).list_parts()
    closed = KafkaConfig(bootstrap=f"127.0.0.1:{_free_port()}", connect_timeout_s=1)
    with pytest.raises(KafkaUnavailable, match="cannot reach Kafka"):
        CoPartitionedSource(closed, ["md.book"]).list_parts()
    with pytest.raises(ValueError, match="unknown flow"):
        build_flow("nope", Config())
    with pytest.raises(ValueError, match="max_inventory_lots"):
        quote_options(Config(quote=QuoteConfig(max_inventory_lots="ten")))
    with pytest.raises(ValueError):
        quote_options(Config(quote=QuoteConfig(strategy="no-such-strategy")))
    with pytest.raises(ValueError, match="prediction_weight"):
        quote_options(Config(quote=QuoteConfig(prediction_weight=-1)))


def _drain(parts: dict[str, object], first: str) -> dict[str, list]:
    """Every part's events until each ends, the parts called in turn as one worker does;
    `first` is called alone until every other part has ended."""
    out: dict[str, list] = {name: [] for name in parts}
    live = dict(parts)
    while live:
        for name, part in list(live.items()):
            if name == first and len(live) > 1:
                continue
            try:
                for chunk in part.next_batch():
                    out[name] += chunk
            except StopIteration:
                part.close()
                del live[name]
    return out


def test_one_worker_reads_all_its_partitions_through_one_consumer(kafka_bootstrap, events):
    """A worker's partitions share one librdkafka consumer (one fetch at the broker, not one
    per partition), and each still gets exactly its own messages in order, also those fetched
    while another partition asked, and also once it is the last partition left; its snapshot
    then is the end of each topic."""
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    source = CoPartitionedSource(config, ["md.book", "md.bbo", "md.trades"], tail=False)
    names = source.list_parts()
    parts = {name: source.build_part("market", name, None) for name in names}
    assert len({id(part._shared) for part in parts.values()}) == 1
    ends = _highs(config, source._topics, len(names))
    # The busiest partition waits while the others read (and fetch for it) to their ends.
    busiest = max(names, key=lambda name: sum(high[int(name)] for high in ends.values()))
    read = _drain(parts, first=busiest)
    assert sum(len(chunk) for chunk in read.values()) == len(events)
    instruments = [{(e.venue, e.symbol) for e in chunk} for chunk in read.values() if chunk]
    assert len(instruments) > 1  # several partitions had data
    assert sum(map(len, instruments)) == len(set().union(*instruments))  # each in one partition
    for chunk in read.values():
        assert [e.receive_ts for e in chunk] == sorted(e.receive_ts for e in chunk)
    for name, part in parts.items():
        # Nothing read from an empty topic partition: it would start from the beginning.
        assert part.snapshot() == {
            topic: ends[topic][int(name)] or OFFSET_BEGINNING for topic in ends
        }
    assert not source._consumers  # the last partition to leave closed the consumer


def _highs(config: KafkaConfig, topics: list[str], partitions: int) -> dict[str, list[int]]:
    consumer = Consumer(config.client_settings() | {"group.id": "highs"})
    try:
        return {
            topic: [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(partitions)]
            for topic in topics
        }
    finally:
        consumer.close()
