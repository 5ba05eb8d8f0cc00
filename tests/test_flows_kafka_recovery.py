"""Delivery guarantees on the real broker, with the quote flow as its own OS process:
`kill -9` mid-stream and a restart from the recovery snapshots lose nothing and repeat only
identical intents; a broker that goes away and comes back is waited out."""

from __future__ import annotations

import dataclasses
import heapq
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Hashable
from itertools import islice
from pathlib import Path
from typing import Any

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
from tests.surveillance_cases import T0, Orders

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


def _rows(recovery_dir: Path, query: str) -> list[tuple]:
    """`query` over every partition of a Bytewax recovery store, read-only (the running flow
    is not disturbed)."""
    rows: list[tuple] = []
    for part in sorted(recovery_dir.glob("part-*.sqlite3")):
        connection = sqlite3.connect(f"file:{part}?mode=ro", uri=True, timeout=5)
        try:
            rows += connection.execute(query).fetchall()
        finally:
            connection.close()
    return rows


def resume_epoch(recovery_dir: Path) -> int:
    """The epoch a restart would resume from now: the lowest worker frontier written for the
    latest execution (Bytewax's `fronts`), 0 before any."""
    rows = _rows(recovery_dir, "SELECT ex_num, worker_frontier FROM fronts")
    if not rows:
        return 0
    latest = max(ex_num for ex_num, _ in rows)
    return min(frontier for ex_num, frontier in rows if ex_num == latest)


def resumed_from(recovery_dir: Path) -> list[int]:
    """The epoch each execution so far started from (Bytewax's `exs`), in order."""
    rows = _rows(recovery_dir, "SELECT DISTINCT ex_num, resume_epoch FROM exs")
    return [epoch for _, epoch in sorted(set(rows))]


def wait_for_resume_past(recovery_dir: Path, epoch: int, flow: subprocess.Popen,
                         log: Path) -> int:
    """Wait until a restart would resume after `epoch` (snapshots committed); that epoch."""
    deadline = time.monotonic() + 60
    while (now := resume_epoch(recovery_dir)) <= epoch:
        assert flow.poll() is None, f"the flow ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no snapshot past epoch {epoch}"
        time.sleep(0.01)
    return now


def _intent_id(intent: OrderIntent) -> str:
    return intent.intent_id


def assert_no_loss_and_only_identical_repeats(
    actual: list, expected: list, key: Callable[[Any], Hashable] = _intent_id
) -> int:
    """Every expected output is there, a repeat is identical to its first copy; returns how
    many outputs were written twice."""
    first: dict = {}
    repeats = 0
    for out in actual:
        seen = first.setdefault(key(out), out)
        if seen is not out:
            repeats += 1
            assert seen == out, f"{key(out)} repeated with other content"
    assert first == {key(out): out for out in expected}
    return repeats


def kill_9_mid_stream_then_restart(
    config: KafkaConfig, flow_name: str, topic: str, expected: list,
    key: Callable[[Any], Hashable], tmp_path: Path, extra_toml: str = "",
) -> None:
    """`quoteflow flow FLOW_NAME` over what is on the md topics, SIGKILLed after a seeded
    random share of its expected output is on `topic` and a snapshot is committed, then
    restarted to the end: nothing lost, repeats identical, and it resumed from that snapshot
    (or a later one), not from the beginning."""
    config_file = write_config(tmp_path / "flow.toml", config, snapshot_interval_s=0.2)
    config_file.write_text(config_file.read_text() + extra_toml)
    args = ("--recovery-dir", str(tmp_path / "recovery"), "--until-end")
    log = tmp_path / "flow.log"
    kill_after = random.Random(SEED).randint(len(expected) // 8, len(expected) // 4)
    recovery = tmp_path / "recovery"

    flow = start_flow(config_file, *args, log=log, flow=flow_name)
    wait_for_intents(config, kill_after, flow, log, topic=topic)
    # Killed once at least one snapshot is committed: before it, a restart begins again
    # from the start (a slow first epoch on a loaded machine did that).
    [first] = resumed_from(recovery)
    snapshot = wait_for_resume_past(recovery, first, flow, log)
    flow.send_signal(signal.SIGKILL)
    flow.wait(timeout=10)
    before_restart = intents_written(config, topic)
    assert before_restart < len(expected), "the flow finished before it could be killed"

    restarted = start_flow(config_file, *args, log=log, flow=flow_name)
    assert restarted.wait(timeout=120) == 0, log.read_text()[-3000:]
    written = [decode(value) for _, _, value in read_topic(config, topic)]
    assert_no_loss_and_only_identical_repeats(written, expected, key)
    # It resumed from a snapshot, not from the beginning (one taken after the read above
    # moves the point further on).
    assert resumed_from(recovery)[1] >= snapshot > first


def test_kill_9_mid_stream_then_restart_loses_nothing(kafka_bootstrap, events, expected,
                                                      tmp_path):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    kill_9_mid_stream_then_restart(config, "quote", "orders.intents", expected, _intent_id,
                                   tmp_path)


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
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    kill_9_mid_stream_then_restart(
        config, "predict", "signals.pred", expected_predictions(events),
        lambda p: (p.venue, p.symbol, p.ts), tmp_path,
    )


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
    kill_9_mid_stream_then_restart(
        config, "arbitrage", "signals.arb", expected,
        lambda a: (a.kind, a.buy_venue, a.buy_symbol, a.sell_venue, a.sell_symbol, a.ts),
        tmp_path,
    )


def test_surveillance_flow_killed_mid_stream_then_restarted_loses_nothing(
    kafka_bootstrap, tmp_path
):
    """`kill -9` of `quoteflow flow surveillance` mid-stream over ordinary quoting on 20
    instruments, with a message-rate limit tight enough to raise an alert every few seconds:
    after a restart from its snapshots every alert is on `surveillance.alerts` as the same
    detectors raise it in-process, repeats only identical."""
    thresholds = {"max_messages": 3, "cooldown_s": 2.0}
    instruments = [Orders("binance", f"C{n}/USDT", **thresholds) for n in range(20)]
    for orders in instruments:
        orders.quotes(1500, T0)
    events = [event for orders in instruments for event in orders.events]
    expected = [alert for orders in instruments for alert in orders.alerts]
    assert len(expected) > 1000
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    settings = "".join(f"{name} = {value}\n" for name, value in thresholds.items())
    kill_9_mid_stream_then_restart(
        config, "surveillance", "surveillance.alerts", expected, lambda a: a.alert_id,
        tmp_path, extra_toml=f"[surveillance]\n{settings}",
    )
