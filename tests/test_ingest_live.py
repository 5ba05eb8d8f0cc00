"""Live ingest wiring up to the network edge.

Live exchanges are unreachable here (no internet), so the exchanges' side is played from
cryptofeed's own recordings: their REST answers (instrument lists, book snapshots) through
stand-ins for cryptofeed's HTTP clients, and their websocket messages handed to the live
feeds' real message handlers. From there on everything is the live path: cryptofeed's parsers
and books, our callbacks and message guard, the source's thread hand-off, the ingest flow, and
a real Kafka broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from decimal import Decimal

import msgspec
import pytest
from bytewax.testing import run_main
from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.symbols import Symbols
from yapic import json as cryptofeed_json

from connectors.kafka import KafkaEventSink
from connectors.live_feeds import LiveFeedError, LiveFeedSource, Outbox, build_feed
from connectors.memory import CallbackSink
from connectors.replay.cryptofeed_events import cryptofeed_symbol, unified_symbol
from connectors.replay.cryptofeed_files import (
    RecordedResponses,
    load_recording,
    received_lines,
    split_received,
    websocket_sessions,
)
from connectors.replay.cryptofeed_recording import iter_recording
from connectors.venues import VENUES
from flows.ingest import build_ingest_flow
from models.events import BBO, DeadLetter, Trade, decode
from tests.conftest import CRYPTOFEED_DIR
from tests.cryptofeed_recordings import bybit_recording
from tests.kafka_service import new_deployment, read_topic

EXCHANGES = ("binance", "coinbase", "kraken", "bitstamp", "okx", "gemini")
KEYS = {"coinbase": {"key_id": "test", "key_secret": "test"}}  # only signs subscriptions


class RecordedRest:
    """cryptofeed's blocking HTTP client (`http_sync`), answering from recorded responses."""

    def __init__(self, *responses: RecordedResponses) -> None:
        self._responses = responses

    def read(self, address, params=None, headers=None, json=False, text=True, uuid=None):
        for responses in self._responses:
            try:
                _, body = responses.take(address)
            except LookupError:
                continue
            return cryptofeed_json.loads(body, parse_float=Decimal) if json else body
        raise ConnectionError(f"no route to host for GET {address}")


class RecordedSnapshots:
    """cryptofeed's async HTTP client (`feed.http_conn`), for the book snapshots."""

    def __init__(self, responses: RecordedResponses) -> None:
        self._responses = responses

    async def read(self, address, header=None, params=None, return_headers=False,
                   retry_count=0, retry_delay=60):
        return self._responses.take(address)[1]

    async def close(self):
        pass


class RecordedSocket:
    """The websocket: what the feed writes goes nowhere, the recording holds the replies."""

    def __init__(self, feed) -> None:
        self.subscription = {chan: list(symbols) for chan, symbols in feed.subscription.items()}
        self.id = self.uuid = f"{feed.id}.recorded"

    async def write(self, msg) -> None:
        pass


def recording(exchange: str):
    venue = VENUES[exchange]
    return venue, load_recording(CRYPTOFEED_DIR, venue.cryptofeed_id, venue.adapter.rest)


def recorded_symbols(exchange: str) -> list[str]:
    _, rec = recording(exchange)
    return sorted({unified_symbol(s) for symbols in rec.configuration.values() for s in symbols})


@pytest.fixture(autouse=True)
def cryptofeed_symbol_tables():
    """Building feeds fills cryptofeed's process-wide symbol tables: put them back after."""
    kept = dict(Symbols.data)
    yield
    Symbols.data.clear()
    Symbols.data.update(kept)


def live_feed(exchange: str, outbox: Outbox, symbols: list[str] | None = None):
    _, rec = recording(exchange)
    symbols = recorded_symbols(exchange) if symbols is None else symbols
    return build_feed(exchange, symbols, outbox, config=KEYS,
                      http_sync=RecordedRest(rec.startup))


async def play(feed, exchange: str) -> None:
    """The recorded websocket session into the feed's guarded message handler."""
    venue, rec = recording(exchange)
    feed.http_conn = RecordedSnapshots(rec.snapshots)
    socket = RecordedSocket(feed)
    await feed.subscribe(socket)
    for _, line in received_lines(rec.sessions):
        _, seconds, message = split_received(line)
        # Live, cryptofeed would reconnect after an exception; the guard dead-letters it.
        with contextlib.suppress(Exception):
            await feed.message_handler(venue.adapter.message(message), socket, float(seconds))


def without_times(event):
    return msgspec.structs.replace(event, receive_ts=0, exchange_ts=0)


def per_key(events, convert=lambda event: event) -> dict[str, list]:
    streams = defaultdict(list)
    for event in events:
        key = "dead letters" if isinstance(event, DeadLetter) else f"{type(event)}{event.key}"
        streams[key].append(convert(event))
    return dict(sorted(streams.items()))


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_feeds_subscribe_the_venue_channels_for_the_symbols(exchange, shared_data):
    symbols = recorded_symbols(exchange)
    feed = live_feed(exchange, Outbox(), symbols)
    sized_ticker = exchange in ("binance", "okx")
    expected = {L2_BOOK, TRADES, TICKER} if sized_ticker else {L2_BOOK, TRADES}
    assert {feed.exchange_channel_to_std(chan) for chan in feed.subscription} == expected
    for exchange_symbols in feed.subscription.values():
        assert sorted(unified_symbol(feed.exchange_symbol_to_std_symbol(s))
                      for s in exchange_symbols) == symbols
    assert feed.checksum_validation


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_live_callbacks_make_the_same_events_as_the_replay(exchange, shared_data):
    outbox = Outbox()
    asyncio.run(play(live_feed(exchange, outbox), exchange))
    live = outbox.take()
    replayed = list(iter_recording(CRYPTOFEED_DIR, exchange))
    # Per instrument: the feed subscribes (and Bitstamp fetches snapshots) in its own order.
    assert per_key(live, without_times) == per_key(replayed, without_times)
    for got, want in zip(per_key(live).values(), per_key(replayed).values(), strict=True):
        for got_event, want_event in zip(got, want, strict=True):
            if isinstance(got_event, Trade | BBO):  # the receipt time, to the microsecond
                assert abs(got_event.receive_ts - want_event.receive_ts) <= 1_000


def test_rejected_messages_become_dead_letters_with_the_raw_message(shared_data):
    outbox = Outbox()
    feed = live_feed("kraken", outbox)

    async def handle(message: str) -> None:
        await feed.message_handler(message, RecordedSocket(feed), 1_650_000_000.25)

    with pytest.raises(ValueError):
        asyncio.run(handle('[464,{"b":[["0.1"'))  # cut short: cryptofeed raises, so reconnects
    asyncio.run(handle('{"event":"surprise"}'))  # cryptofeed only logs a warning
    cut, unknown = outbox.take()
    assert isinstance(cut, DeadLetter) and cut.raw == '[464,{"b":[["0.1"'
    assert cut.source == "cryptofeed:kraken:live" and cut.receive_ts == 1_650_000_000_250_000_000
    assert unknown.raw == '{"event":"surprise"}' and "cryptofeed:" in unknown.reason


def test_unknown_venue_is_a_clear_error():
    with pytest.raises(LiveFeedError, match=r"no live feed: unknown exchange 'mtgox'; known: .*"):
        build_feed("mtgox", ["BTC/USD"], Outbox())


def test_bad_symbols_are_clear_errors(shared_data):
    with pytest.raises(LiveFeedError, match=r"kraken: bad symbol.*'BTCUSD'"):
        live_feed("kraken", Outbox(), ["BTCUSD"])
    with pytest.raises(LiveFeedError, match="gemini does not list DOGE/EUR, XYZ/USD"):
        live_feed("gemini", Outbox(), [*recorded_symbols("gemini")[:1], "DOGE/EUR", "XYZ/USD"])
    with pytest.raises(LiveFeedError, match="no symbols"):
        live_feed("gemini", Outbox(), [])
    with pytest.raises(LiveFeedError, match="no venues"):
        LiveFeedSource({})


def test_unreachable_exchange_is_a_clear_error():
    with pytest.raises(LiveFeedError, match=r"okx: cannot list the exchange's instruments.*"
                                            "no route to host"):
        build_feed("okx", ["BTC/USDT"], Outbox(), http_sync=RecordedRest())


def test_coinbase_without_api_key_is_a_clear_error():
    with pytest.raises(LiveFeedError, match="key_id and key_secret under 'coinbase'"):
        build_feed("coinbase", ["BTC/USD"], Outbox())


@pytest.mark.integration
def test_live_source_through_the_ingest_flow_into_kafka(kafka_bootstrap, shared_data):
    exchanges = ("kraken", "okx", "gemini")
    instruments = {exchange: recorded_symbols(exchange) for exchange in exchanges}
    rest = RecordedRest(*(recording(exchange)[1].startup for exchange in exchanges))
    source = LiveFeedSource(instruments, http_sync=rest)
    for exchange in exchanges:
        asyncio.run(play(source.feeds[exchange], exchange))
    source.stop()  # the source ends once what the feeds delivered has been handed on
    config = new_deployment(kafka_bootstrap)

    run_main(build_ingest_flow(source, KafkaEventSink(config)))

    published = [decode(value) for name in ("md.book", "md.bbo", "md.trades")
                 for _, _, value in read_topic(config, name)]
    for exchange in exchanges:
        expected = [e for e in iter_recording(CRYPTOFEED_DIR, exchange)]
        got = [e for e in published if e.venue == exchange]
        assert sorted(map(repr, map(without_times, got))) == sorted(
            map(repr, map(without_times, expected)))


@pytest.mark.parametrize("unified", ["BTC/USD", "BTC/USDT:USDT", "UNI/USD:UNI",
                                     "BTC/USD:BTC-220527", "ETH/USDT:USDT-230303"])
def test_cryptofeed_symbol_inverts_unified_symbol(unified):
    assert unified_symbol(cryptofeed_symbol(unified)) == unified


@pytest.mark.parametrize("bad", ["BTC", "BTC/", "/USD", "BTC-X/USD", "BTC/USD:USD",
                                 "BTC/USD:BTC-221327", "BTC/USD:BTC-2205"])
def test_cryptofeed_symbol_rejects_what_cryptofeed_cannot_name(bad):
    with pytest.raises(ValueError):
        cryptofeed_symbol(bad)


def test_a_feed_that_gives_up_connecting_fails_the_flow(shared_data):
    # No internet here: with no retries cryptofeed gives up at once, and the source must say
    # so rather than idle as if the market were quiet.
    rest = RecordedRest(recording("okx")[1].startup)
    source = LiveFeedSource({"okx": ["BTC/USDT"]}, http_sync=rest, retries=0)
    with pytest.raises(Exception) as raised:  # Bytewax wraps the source's error
        run_main(build_ingest_flow(source, CallbackSink(lambda items: None)))
    cause = raised.value
    while cause is not None and not isinstance(cause, LiveFeedError):
        cause = cause.__cause__
    assert cause is not None and "live feed stopped: ExhaustedRetries" in str(cause)


def test_an_exchange_without_code_of_its_own_runs_live_as_it_replays(tmp_path):
    """Bybit, from a constructed recording (tests/cryptofeed_recordings.py): the live feed is
    built from the venue's descriptor alone, each recorded socket is played into the live
    feed's guarded handler on the connection cryptofeed's own `Feed.connect` makes for that
    address, and the events are the replay's."""
    directory, _ = bybit_recording(tmp_path)
    rec = load_recording(directory, "BYBIT", lambda url, body: (url, body))
    outbox = Outbox()
    feed = build_feed("bybit", ["BTC/USDT:USDT", "ETH/USDT"], outbox,
                      http_sync=RecordedRest(rec.startup))
    assert {feed.exchange_channel_to_std(c) for c in feed.subscription} == {
        L2_BOOK, TRADES, TICKER}
    connections = {conn.address: conn for conn, *_ in feed.connect()}

    async def play() -> None:
        for address, files in websocket_sessions(rec.sessions):
            socket = RecordedSocket(feed)
            socket.address = address
            socket.subscription = connections[address].subscription
            await feed.subscribe(socket)
            for _, line in received_lines(files):
                _, seconds, message = split_received(line)
                await feed.message_handler(message, socket, float(seconds))

    asyncio.run(play())
    live = outbox.take()
    replayed = list(iter_recording(directory, "bybit"))
    assert not [e for e in live if isinstance(e, DeadLetter)]
    assert per_key(live, without_times) == per_key(replayed, without_times)
