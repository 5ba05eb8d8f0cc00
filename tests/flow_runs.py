"""Helpers for tests that run the Kafka flows: recorded data onto md.*, the flows as OS
processes, and the expected intents computed in-process from the same events."""

from __future__ import annotations

import heapq
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from connectors.kafka import EventProducer, KafkaConfig
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import instrument_for
from flows.quote import instrument_key
from models.events import BBO, BookDelta, BookSnapshot, OrderIntent, Trade, decode
from models.quote_session import QuoteSessionOptions, QuoteSessions
from tests.conftest import BINANCE_FILES
from tests.kafka_service import kafka_toml, read_topic

QUOTEFLOW = Path(sys.executable).parent / "quoteflow"
OPTIONS = QuoteSessionOptions(strategy="avellaneda-stoikov-infinite")
SPOT_FILES = [f for f in BINANCE_FILES if f.parent.name == "spot"]


def recorded_events(count: int) -> list:
    """The first `count` events of both Binance spot recordings, merged by receive time."""
    return list(islice(Recordings(SPOT_FILES).events(), count))


def publish(config: KafkaConfig, events: list) -> None:
    producer = EventProducer(config)
    producer.send_all(events)
    producer.close()


def per_instrument_streams(events: list) -> dict[str, Iterator]:
    """Each instrument's md topics merged by receive time, as the co-partitioned source does."""
    by_topic: dict[str, list[list]] = defaultdict(lambda: [[], [], []])
    for event in events:
        rank = {BookSnapshot: 0, BookDelta: 0, BBO: 1, Trade: 2}[type(event)]
        by_topic[instrument_key(event)][rank].append(event)
    return {key: heapq.merge(*streams, key=lambda e: e.receive_ts)
            for key, streams in by_topic.items()}


def expected_intents(events: list, options: QuoteSessionOptions = OPTIONS) -> list[OrderIntent]:
    sessions = QuoteSessions(options, instrument_for)
    intents = []
    for key, stream in per_instrument_streams(events).items():
        session = sessions(key)
        for event in stream:
            intents.extend(session.on_event(event))
    return intents


def intents_on(config: KafkaConfig) -> list[OrderIntent]:
    return [decode(value) for _, _, value in read_topic(config, "orders.intents")]


def write_config(path: Path, config: KafkaConfig, snapshot_interval_s: float = 5.0) -> Path:
    path.write_text(
        kafka_toml(config)
        + f"[recovery]\nsnapshot_interval_s = {snapshot_interval_s}\n"
    )
    return path


def start_flow(
    config_file: Path, *args: str, log: Path, flow: str = "quote"
) -> subprocess.Popen:
    """`quoteflow flow FLOW` (default quote) as its own OS process, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(QUOTEFLOW), "flow", flow, "--config", str(config_file), *args],
            stdout=out, stderr=subprocess.STDOUT,
        )


def by_id(intents: list[OrderIntent]) -> dict[str, OrderIntent]:
    return {intent.intent_id: intent for intent in intents}
