"""The ingest flow in replay mode on the real broker: recordings in, md.* and deadletter out.

Each deployment gets its own topic prefix (`new_deployment`). The recordings are replayed
through cryptofeed's parsers (cryptofeed's own sample recordings) or the hftbacktest decoder
(Binance files), as `connectors.replay` does.
"""

from __future__ import annotations

import gzip
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from connectors.kafka import KafkaConfig, KafkaUnavailable, MissingTopicsError
from connectors.replay.cryptofeed_recording import iter_recording
from connectors.replay.recordings import Recordings
from flows.ingest import run_ingest
from models.book import BookStatus, OrderBook
from models.events import BookDelta, BookSnapshot, DeadLetter, decode
from tests.conftest import BINANCE_FILES, CRYPTOFEED_DIR
from tests.kafka_service import fresh_prefix, kafka_config, new_deployment, read_topic
from tests.plain_books import assert_books_never_cross

pytestmark = pytest.mark.integration

EXCHANGES = ("binance", "coinbase", "kraken", "bitstamp", "okx", "gemini")
MARKET_TOPICS = ("md.book", "md.bbo", "md.trades")


def ws_file(exchange: str, directory: Path = CRYPTOFEED_DIR) -> Path:
    (path,) = directory.glob(f"{exchange.upper()}.ws.*")
    return path


class Ingested:
    """What one ingest run left on the broker, per topic in partition order."""

    def __init__(self, config: KafkaConfig, stats: dict) -> None:
        self.stats = stats
        self.by_topic = {}
        for name in (*MARKET_TOPICS, "deadletter"):
            self.by_topic[name] = [
                (partition, key.decode() if key else None, decode(value))
                for partition, key, value in read_topic(config, name)
            ]

    def market(self) -> list:
        return [item for name in MARKET_TOPICS for item in self.by_topic[name]]

    def dead_letters(self) -> list[DeadLetter]:
        return [event for _, _, event in self.by_topic["deadletter"]]

    def per_key(self) -> dict[tuple[str, str], list]:
        """Events per (topic, key): the order Kafka promises to keep."""
        streams = defaultdict(list)
        for name in MARKET_TOPICS:
            for _, key, event in self.by_topic[name]:
                streams[name, key].append(event)
        return streams


def ingest(bootstrap: str, paths: list[Path]) -> Ingested:
    config = new_deployment(bootstrap)
    return Ingested(config, run_ingest("replay", config, paths=paths))


def topic_of(event) -> str:
    return "md.book" if isinstance(event, BookDelta | BookSnapshot) else (
        "md.bbo" if type(event).__name__ == "BBO" else "md.trades")


@pytest.fixture(scope="module")
def cryptofeed_ingested(kafka_bootstrap, shared_data) -> Ingested:
    # All six in one run: Recordings merges them by receive time, as one ingest process would.
    return ingest(kafka_bootstrap, [ws_file(exchange) for exchange in EXCHANGES])


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_every_recorded_message_is_published_or_dead_lettered(cryptofeed_ingested, exchange):
    stats = cryptofeed_ingested.stats[exchange]
    assert stats["read"] == stats["produced"] + stats["ignored"] + stats["failed"] > 0
    published = [e for _, _, e in cryptofeed_ingested.market() if e.venue == exchange]
    dead = [d for d in cryptofeed_ingested.dead_letters()
            if d.source.startswith(f"cryptofeed:{exchange}:")]
    assert len(published) == stats["events"] > 0
    assert len(dead) == stats["failed"]
    assert not [d for d in cryptofeed_ingested.dead_letters() if d.source.startswith("ingest:")]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_topics_hold_the_replayed_events_keyed_and_in_order(cryptofeed_ingested, exchange):
    expected = defaultdict(list)
    for event in iter_recording(CRYPTOFEED_DIR, exchange):
        expected[topic_of(event), event.key].append(event)
    got = {stream: events for stream, events in cryptofeed_ingested.per_key().items()
           if stream[1].startswith(f"{exchange}:")}
    assert got == expected  # exact events (Decimals on the venue's grid), per key in order
    for name in MARKET_TOPICS:
        partitions_by_key = defaultdict(set)
        for partition, key, event in cryptofeed_ingested.by_topic[name]:
            assert key == f"{event.venue}:{event.symbol}"
            partitions_by_key[key].add(partition)
        assert all(len(p) == 1 for p in partitions_by_key.values())


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_books_rebuilt_from_md_book_never_cross(cryptofeed_ingested, exchange):
    book_events = [e for _, _, e in cryptofeed_ingested.by_topic["md.book"] if e.venue == exchange]
    assert assert_books_never_cross(book_events) > 0


def test_binance_hftbacktest_files(kafka_bootstrap, shared_data):
    ingested = ingest(kafka_bootstrap, BINANCE_FILES)
    stats = ingested.stats
    assert len(ingested.market()) == stats["lines"] == sum(stats["events"].values())
    assert not ingested.dead_letters() and not stats["dead_letter_reasons"]
    # Consumers keep books under the venues' sequencing rules: no gap, never crossed, synced.
    books: dict[str, OrderBook] = {}
    for _, key, event in ingested.by_topic["md.book"]:
        book = books.get(key) or books.setdefault(key, OrderBook(event.venue, event.symbol))
        assert book.apply(event) not in (BookStatus.GAP, BookStatus.CROSSED)
    assert len(books) == len(BINANCE_FILES) and all(book.synced for book in books.values())
    assert {
        "binance:BTC/USDT", "binance:ETH/USDT", "binanceusdm:BTC/USDT:USDT",
        "binanceusdm:ETH/USDT:USDT",
    } <= {key for _, key, _ in ingested.market()}


def test_corrupt_cryptofeed_lines_reach_the_dead_letter_topic(kafka_bootstrap, tmp_path):
    for path in CRYPTOFEED_DIR.glob("GEMINI.*"):
        shutil.copy(path, tmp_path / path.name)
    session = ws_file("gemini", tmp_path)
    lines = session.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"symbol":"ANKRUSD"' in line)
    lines[cut] = lines[cut][: len(lines[cut]) // 2] + "\n"
    lines.insert(cut + 1, "no timestamp here\n")
    session.write_text("".join(lines))

    ingested = ingest(kafka_bootstrap, [session])
    stats = ingested.stats["gemini"]
    assert stats["read"] == stats["produced"] + stats["ignored"] + stats["failed"]
    dead = ingested.dead_letters()
    assert len(dead) == stats["failed"] == 2
    assert len(ingested.market()) == stats["events"]
    half, no_ts = dead
    assert half.source == f"cryptofeed:gemini:{session.name}:{cut + 1}"
    assert half.raw == lines[cut].rstrip("\n") and half.reason
    assert "not a recorded message" in no_ts.reason and no_ts.raw == "no timestamp here"


def test_gap_and_garbage_in_a_binance_file_are_dead_lettered(kafka_bootstrap, tmp_path):
    spot = next(path for path in BINANCE_FILES if "spot/btcusdt" in str(path))
    with gzip.open(spot, "rt") as file:
        lines = [file.readline() for _ in range(6000)]
    snapshot = next(i for i, line in enumerate(lines) if '"lastUpdateId"' in line)
    diffs = [i for i, line in enumerate(lines) if "@depth" in line and i > snapshot]
    dropped = lines.pop(diffs[5])  # a missing diff: the next one's U skips ahead
    lines.insert(snapshot, "garbage\n")
    copy = tmp_path / "btcusdt_gap.gz"
    with gzip.open(copy, "wt") as file:
        file.writelines(lines)

    ingested = ingest(kafka_bootstrap, [copy])
    # Dead letters of different origins are not ordered with each other (one is keyed by
    # its instrument on the way), so they are matched by reason.
    dead = {d.reason.split(":")[0]: d for d in ingested.dead_letters()}
    assert sorted(dead) == ["bad_timestamp", "book_gap"]
    assert dead["bad_timestamp"].raw == "garbage"
    gap = dead["book_gap"]
    assert gap.source == "ingest:binance:BTC/USDT"
    gapping = decode(gap.raw)
    assert gapping.first_seq > int(dropped.split('"u":')[1].split(",")[0])
    # The gapping delta is published too, so every consumer's book drops sync at it.
    assert gapping in [e for _, _, e in ingested.by_topic["md.book"]]
    assert len(ingested.market()) == len(lines) - 1


def test_unreachable_broker_is_a_clear_error_at_start_up(shared_data):
    config = KafkaConfig(bootstrap="127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(KafkaUnavailable, match=r"cannot reach Kafka at 127\.0\.0\.1:9"):
        run_ingest("replay", config, paths=[ws_file("okx")])


def test_missing_topics_are_a_clear_error_at_start_up(kafka_bootstrap, shared_data):
    config = kafka_config(kafka_bootstrap, prefix=fresh_prefix())
    with pytest.raises(MissingTopicsError, match=r"md\.book"):
        run_ingest("replay", config, paths=[ws_file("okx")])


def test_bad_recordings_are_clear_errors_at_start_up(kafka_bootstrap, tmp_path, shared_data):
    config = new_deployment(kafka_bootstrap)
    with pytest.raises(FileNotFoundError, match="no such recording"):
        run_ingest("replay", config, paths=[tmp_path / "nothing.gz"])
    unknown = tmp_path / "MTGOX.ws.1.0"
    unknown.write_text("")
    with pytest.raises(ValueError, match="unknown exchange 'MTGOX'"):
        run_ingest("replay", config, paths=[unknown])
    with pytest.raises(ValueError, match="mode"):
        run_ingest("backfill", config, paths=[ws_file("okx")])


def test_recordings_accounting_matches_a_direct_replay(shared_data):
    # The stats run_ingest returns are the replay's own: the same counts as without Kafka.
    recordings = Recordings([ws_file("okx")])
    events = list(recordings.events())
    assert recordings.stats()["okx"]["events"] == len(events)
