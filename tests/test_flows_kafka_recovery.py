"""Delivery guarantees on the real broker, with the quote flow as its own OS process:
`kill -9` mid-stream and a restart from the recovery snapshots lose nothing and repeat only
identical intents; a broker that goes away and comes back is waited out."""

from __future__ import annotations

import dataclasses
import heapq
import random
import signal
import subprocess
import time
from itertools import islice
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka import KafkaConfig, connect_admin, ensure_topics, topic_name
from connectors.kafka.topics import TOPICS
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import all_instruments
from models.arbitrage import ArbitrageConfig, ArbitrageEngine, AssetGrouper
from models.events import (
    BBO,
    ArbSignal,
    BookDelta,
    BookSnapshot,
    OrderIntent,
    Prediction,
    Trade,
    decode,
)
from models.predictor import PredictorConfig, PredictSession
from tests.conftest import BINANCE_FILES
from tests.flow_runs import (
    expected_intents,
    intents_on,
    per_instrument_streams,
    publish,
    recorded_events,
    start_flow,
    write_config,
)
from tests.kafka_service import (
    KAFKA_SCRIPT,
    _free_port,
    fresh_prefix,
    kafka_config,
    new_deployment,
    read_topic,
    register_broker,
)

pytestmark = pytest.mark.integration

EVENTS = 40_000
SEED = 20240808


@pytest.fixture(scope="module")
def events(shared_data):
    return recorded_events(EVENTS)


@pytest.fixture(scope="module")
def expected(events):
    return expected_intents(events)


def intents_written(config: KafkaConfig, topic: str = "orders.intents") -> int:
    """Messages on a topic (orders.intents) so far (sum of the partitions' high watermarks)."""
    topic = topic_name(config.prefix, topic)
    consumer = Consumer(config.client_settings() | {"group.id": "watch"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in partitions)
    finally:
        consumer.close()


def wait_for_intents(config: KafkaConfig, count: int, flow: subprocess.Popen, log: Path,
                     topic: str = "orders.intents") -> None:
    deadline = time.monotonic() + 60
    while intents_written(config, topic) < count:
        assert flow.poll() is None, f"the flow ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no progress on {topic}"
        time.sleep(0.02)


def assert_no_loss_and_only_identical_repeats(
    actual: list[OrderIntent], expected: list[OrderIntent]
) -> int:
    """Returns how many intents were written twice."""
    first: dict[str, OrderIntent] = {}
    repeats = 0
    for intent in actual:
        seen = first.setdefault(intent.intent_id, intent)
        if seen is not intent:
            repeats += 1
            assert seen == intent, f"{intent.intent_id} repeated with other content"
    assert first == {i.intent_id: i for i in expected}
    return repeats


def test_kill_9_mid_stream_then_restart_loses_nothing(kafka_bootstrap, events, expected,
                                                      tmp_path):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    config_file = write_config(tmp_path / "q.toml", config, snapshot_interval_s=0.2)
    args = ("--recovery-dir", str(tmp_path / "recovery"), "--until-end")
    log = tmp_path / "flow.log"
    kill_after = random.Random(SEED).randint(len(expected) // 4, len(expected) // 2)

    flow = start_flow(config_file, *args, log=log)
    wait_for_intents(config, kill_after, flow, log)
    flow.send_signal(signal.SIGKILL)
    flow.wait(timeout=10)
    before_restart = intents_written(config)
    assert before_restart < len(expected), "the flow finished before it could be killed"

    restarted = start_flow(config_file, *args, log=log)
    assert restarted.wait(timeout=120) == 0, log.read_text()[-3000:]
    repeats = assert_no_loss_and_only_identical_repeats(intents_on(config), expected)
    # It resumed from a snapshot, not from the beginning.
    assert repeats < before_restart


@pytest.fixture
def own_broker(tmp_path):
    """A broker of this test's own, so stopping it disturbs no other test."""
    directory = tmp_path / "kafka"
    ports = [str(_free_port()), str(_free_port())]

    def start() -> str:
        started = subprocess.run([str(KAFKA_SCRIPT), "start", str(directory), *ports],
                                 capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        assert started.stdout.strip().splitlines()[-1] == register_broker(directory)
        return register_broker(directory)

    def stop() -> None:
        subprocess.run([str(KAFKA_SCRIPT), "stop", str(directory)], check=True, timeout=60)

    try:
        yield start, stop
    finally:
        stop()


def test_broker_outage_is_waited_out(own_broker, events, expected, tmp_path):
    start_broker, stop_broker = own_broker
    config = new_deployment(start_broker())
    publish(config, events)
    log = tmp_path / "flow.log"
    flow = start_flow(write_config(tmp_path / "q.toml", config), "--until-end", log=log)
    try:
        wait_for_intents(config, 1, flow, log)
        stop_broker()
        time.sleep(3)
        assert flow.poll() is None, f"the flow died with the broker:\n{log.read_text()[-3000:]}"
        start_broker()
        try:
            code = flow.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the flow did not finish after the broker came back:\n"
                        f"{log.read_text()[-3000:]}")
        assert code == 0, log.read_text()[-3000:]
    finally:
        if flow.poll() is None:
            flow.kill()
    assert_no_loss_and_only_identical_repeats(intents_on(config), expected)
    assert "Traceback" not in log.read_text()



def expected_predictions(events: list) -> list[Prediction]:
    """What the predict flow writes, computed in-process from the same events."""
    predictions = []
    for stream in per_instrument_streams(events).values():
        session = None
        for event in stream:
            if session is None:
                session = PredictSession(event.venue, event.symbol, PredictorConfig())
            predictions.extend(session.on_event(event))
    return predictions


def test_predict_flow_killed_mid_stream_then_restarted_loses_nothing(
    kafka_bootstrap, events, tmp_path
):
    """`kill -9` of `quoteflow flow predict` mid-stream: after a restart from its snapshots
    every prediction is on `signals.pred`, repeats only as identical copies (the online
    model resumes from the snapshot, so it forecasts exactly as an uninterrupted run)."""
    expected = expected_predictions(events)
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    config_file = write_config(tmp_path / "p.toml", config, snapshot_interval_s=0.2)
    args = ("--recovery-dir", str(tmp_path / "recovery"), "--until-end")
    log = tmp_path / "flow.log"
    kill_after = random.Random(SEED).randint(len(expected) // 4, len(expected) // 2)

    flow = start_flow(config_file, *args, log=log, flow="predict")
    wait_for_intents(config, kill_after, flow, log, topic="signals.pred")
    flow.send_signal(signal.SIGKILL)
    flow.wait(timeout=10)
    before_restart = intents_written(config, "signals.pred")
    assert before_restart < len(expected), "the flow finished before it could be killed"

    restarted = start_flow(config_file, *args, log=log, flow="predict")
    assert restarted.wait(timeout=120) == 0, log.read_text()[-3000:]
    written = [decode(value) for _, _, value in read_topic(config, "signals.pred")]
    first: dict[tuple, Prediction] = {}
    repeats = 0
    for prediction in written:
        key = (prediction.venue, prediction.symbol, prediction.ts)
        seen = first.setdefault(key, prediction)
        if seen is not prediction:
            repeats += 1
            assert seen == prediction, f"{key} repeated with another forecast"
    assert first == {(p.venue, p.symbol, p.ts): p for p in expected}
    assert repeats < before_restart  # resumed from a snapshot, not from the beginning


def _one_partition_deployment(bootstrap: str) -> KafkaConfig:
    """A deployment whose topics have one partition each: the arbitrage flow then sees every
    instrument in one receive-ordered stream, so its output is a function of the input and a
    restarted run can be compared with an uninterrupted one signal by signal. (Over several
    partitions the legs of a pair interleave as the consumer happens to fetch them.)"""
    config = kafka_config(bootstrap, prefix=fresh_prefix(), account="acct-1",
                          connect_timeout_s=10)
    specs = tuple(dataclasses.replace(spec, partitions=1) for spec in TOPICS)
    ensure_topics(connect_admin(config), config.prefix, specs)
    return config


def expected_arbitrage(events: list) -> list[ArbSignal]:
    """The signals of one receive-ordered stream (md topics merged as the source does)."""
    streams: list[list] = [[], [], []]
    for event in events:
        streams[{BookSnapshot: 0, BookDelta: 0, BBO: 1, Trade: 2}[type(event)]].append(event)
    config = ArbitrageConfig(instruments=all_instruments())
    route = AssetGrouper(config.quote_aliases).route
    engines: dict[str, ArbitrageEngine] = {}
    signals: list[ArbSignal] = []
    for event in heapq.merge(*streams, key=lambda e: e.receive_ts):
        key = route(event)
        if key is not None:
            engine = engines.setdefault(key, ArbitrageEngine(config))
            signals.extend(s for s in engine.on_event(event) if isinstance(s, ArbSignal))
    for engine in engines.values():
        signals.extend(s for s in engine.close() if isinstance(s, ArbSignal))
    return signals


def test_arbitrage_flow_killed_mid_stream_then_restarted_loses_nothing(
    kafka_bootstrap, shared_data, tmp_path
):
    """`kill -9` of `quoteflow flow arbitrage` mid-stream over BTCUSDT spot and USD-M: after
    a restart from its snapshots every spot-perp signal is on `signals.arb` exactly as an
    uninterrupted run computes it, repeats only as identical copies."""
    files = [path for path in BINANCE_FILES if path.name.startswith("btcusdt")]
    events = list(islice(Recordings(files).events(), EVENTS))
    expected = expected_arbitrage(events)
    assert len(expected) > 100
    config = _one_partition_deployment(kafka_bootstrap)
    publish(config, events)
    config_file = write_config(tmp_path / "a.toml", config, snapshot_interval_s=0.2)
    args = ("--recovery-dir", str(tmp_path / "recovery"), "--until-end")
    log = tmp_path / "flow.log"
    kill_after = random.Random(SEED).randint(len(expected) // 4, len(expected) // 2)

    flow = start_flow(config_file, *args, log=log, flow="arbitrage")
    wait_for_intents(config, kill_after, flow, log, topic="signals.arb")
    flow.send_signal(signal.SIGKILL)
    flow.wait(timeout=10)
    before_restart = intents_written(config, "signals.arb")
    assert before_restart < len(expected), "the flow finished before it could be killed"

    restarted = start_flow(config_file, *args, log=log, flow="arbitrage")
    assert restarted.wait(timeout=120) == 0, log.read_text()[-3000:]
    written = [decode(value) for _, _, value in read_topic(config, "signals.arb")]
    first: dict[tuple, ArbSignal] = {}
    repeats = 0
    for arb in written:
        key = (arb.kind, arb.buy_venue, arb.buy_symbol, arb.sell_venue, arb.sell_symbol, arb.ts)
        seen = first.setdefault(key, arb)
        if seen is not arb:
            repeats += 1
            assert seen == arb, f"{key} repeated with other content"
    assert first == {
        (a.kind, a.buy_venue, a.buy_symbol, a.sell_venue, a.sell_symbol, a.ts): a
        for a in expected
    }
    assert repeats < before_restart  # resumed from a snapshot, not from the beginning
