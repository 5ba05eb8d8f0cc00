"""Replay of cryptofeed raw-data recordings through cryptofeed's own exchange parsers.

Done as cryptofeed's `raw_data_collection.playback` does it, minus its process-wide patches:
the real Feed class for the exchange is built from the recorded configuration, its REST calls
(symbol lists at start-up, book snapshots later) are answered from the recorded files, every
received websocket message goes to the feed's real `message_handler(msg, conn, timestamp)`, and
its L2_BOOK, TRADES and TICKER callbacks become quoteflow events. Replay thus runs the live
parsing path, book keeping and sequence checks included.

Every received message is read once and counted in exactly one of
- produced: it made at least one event;
- ignored: cryptofeed handled it and made no event on purpose (subscription acks, heartbeats,
  status messages, channels quoteflow does not consume such as candles, book diffs older than
  the snapshot);
- failed: it raised, cryptofeed logged a warning about it, or an object it made could not be
  converted. One DeadLetter is yielded for it, after any events it made before failing (they
  are already in cryptofeed's own book, so consumers must see them too).
Events made while subscribing (Bitstamp fetches its snapshots then) belong to no message.

receive_ts is the recorded local receive time of the websocket message being handled; a book
snapshot fetched over REST takes the REST response's recorded time instead, so receive_ts
steps back after it (cryptofeed handles the messages queued meanwhile after the snapshot, as
live). exchange_ts falls back to receive_ts where cryptofeed gives no exchange time: Binance
bookTicker and REST snapshots, every Kraken and Gemini book update, Coinbase book snapshots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from pathlib import Path

from cryptofeed.exceptions import UnsupportedSymbol
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.feed import Feed
from cryptofeed.symbols import Symbols
from yapic import json as cryptofeed_json

from connectors.replay.cryptofeed_events import EventSink, describe, letters
from connectors.replay.cryptofeed_files import (
    RecordedResponses,
    Recording,
    load_recording,
    received_lines,
    split_received,
    websocket_sessions,
)
from connectors.replay.legacy_symbols import current_symbol
from connectors.venues import FORMER_NAMES, UnknownVenueError, Venue, venue_for
from models.events import AnyMarketEvent, DeadLetter

__all__ = ["RecordingReplay", "ReplayStats", "iter_recording"]

_CRYPTOFEED_LOGGER = "feedhandler"
_BATCH = 512

# (location, line, receive_ns, events, failures) of one received message
_Handled = tuple[str, str, int | None, list[AnyMarketEvent], list[str]]


@dataclass(slots=True)
class ReplayStats:
    """Counts of one exchange's recorded messages; see the module notes for the buckets."""

    exchange: str
    read: int = 0
    produced: int = 0
    ignored: int = 0
    failed: int = 0
    events: int = 0

    @property
    def accounted(self) -> bool:
        return self.read == self.produced + self.ignored + self.failed


def iter_recording(
    directory: str | Path, exchange: str, *, prefix: str | None = None
) -> RecordingReplay:
    """Events of `exchange`'s recording in `directory`, in cryptofeed's processing order.

    `exchange` is any venue of `connectors.venues` (every exchange cryptofeed supports), by
    quoteflow's name or cryptofeed's id; an unknown one raises UnknownVenueError (a
    ValueError) naming the known ones, missing files FileNotFoundError. `prefix` is the files'
    name before `.0` / `.ws.N.M` when it is not cryptofeed's id (the recorder may add an id).
    """
    return RecordingReplay(directory, exchange, prefix)


class RecordingReplay:
    """An iterator of events and dead letters; `stats` counts as it is consumed."""

    __slots__ = ("_items", "stats")

    def __init__(self, directory: str | Path, exchange: str, prefix: str | None = None) -> None:
        venue = venue_for(exchange)
        if venue.cryptofeed_id is None:
            raise UnknownVenueError(f"{venue.name}: cryptofeed has no feed for this exchange")
        if prefix is None:
            prefix = exchange.upper() if venue.name in FORMER_NAMES else venue.cryptofeed_id
        recording = load_recording(Path(directory), prefix, venue.adapter.rest)
        sink = EventSink(venue.name, venue.ticker_sizes)
        # Built now, so unusable start-up data fails here rather than at the first event.
        feed = _build_feed(venue, recording, sink)
        self.stats = ReplayStats(venue.name)
        self._items = _replay(_FeedDriver(feed, sink, venue), recording.sessions, self.stats)

    def __iter__(self) -> RecordingReplay:
        return self

    def __next__(self) -> AnyMarketEvent | DeadLetter:
        return next(self._items)

    def close(self) -> None:
        self._items.close()


def _replay(
    driver: _FeedDriver, sessions: list[Path], stats: ReplayStats
) -> Iterator[AnyMarketEvent | DeadLetter]:
    try:
        for address, files in websocket_sessions(sessions):
            yield from _replay_session(driver, address, files, stats)
    finally:
        driver.close()


def _replay_session(
    driver: _FeedDriver, address: str | None, files: list[Path], stats: ReplayStats
) -> Iterator[AnyMarketEvent | DeadLetter]:
    """One websocket session: subscribed on a connection of its own, as live."""
    events = driver.subscribe(address)
    stats.events += len(events)
    yield from events

    lines = received_lines(files)
    while batch := list(islice(lines, _BATCH)):
        for location, line, receive_ns, events, failures in driver.handle(batch):
            stats.read += 1
            stats.events += len(events)
            if failures:
                stats.failed += 1
            elif events:
                stats.produced += 1
            else:
                stats.ignored += 1
            yield from events
            if failures:
                yield DeadLetter(
                    source=f"cryptofeed:{stats.exchange}:{location}",
                    reason="; ".join(failures),
                    raw=line,
                    receive_ts=receive_ns,
                )


class _FeedDriver:
    """Drives one feed on an event loop of its own, a batch of recorded lines per loop run:
    starting the loop for every message would cost as much as cryptofeed's parsing.

    The loop and the log capture start when iteration does, so an iterator never consumed
    holds neither.
    """

    def __init__(self, feed: Feed, sink: EventSink, venue: Venue) -> None:
        self._feed = feed
        self._conn = _ReplayConnection(feed, None)
        self._translate = venue.adapter.message
        self._venue = venue.name
        self._sink = sink
        self._loop: _NoWaitLoop | None = None
        self._warnings = _WarningCapture()

    def close(self) -> None:
        if self._loop is not None:
            logging.getLogger(_CRYPTOFEED_LOGGER).removeHandler(self._warnings)
            self._loop.close()

    def subscribe(self, address: str | None) -> list[AnyMarketEvent]:
        """A new connection to `address` (the recorded session's URL), subscribed."""
        if self._loop is None:
            self._loop = _NoWaitLoop()
            logging.getLogger(_CRYPTOFEED_LOGGER).addHandler(self._warnings)
        self._conn = _ReplayConnection(self._feed, address)
        try:
            self._run(self._feed.subscribe(self._conn))
        except Exception as exc:
            self._sink.failures.append(describe(exc))
        events, failures = self._sink.take()
        failures += self._warnings.take()
        if failures:
            raise ValueError(
                f"{self._venue}: cryptofeed cannot subscribe from the recording: "
                + "; ".join(failures)
            )
        return events

    def handle(self, batch: list[tuple[str, str]]) -> list[_Handled]:
        return self._run(self._handle(batch))

    def _run(self, coroutine):
        with self._warnings:
            return self._loop.run_until_complete(coroutine)

    async def _handle(self, batch: list[tuple[str, str]]) -> list[_Handled]:
        handled = []
        for location, line in batch:
            receive_ns = None
            try:
                receive_ns, seconds, message = split_received(line)
                self._sink.receive_ns = receive_ns
                if isinstance(message, str):
                    message = self._translate(message)
                await self._feed.message_handler(message, self._conn, float(seconds))
            except Exception as exc:
                self._sink.failures.append(describe(exc))
            self._sink.failures.extend(self._warnings.take())
            events, failures = self._sink.take()
            failures = [f for f in failures if not self._sink.names_unnamed(f)]
            handled.append((location, line, receive_ns, events, failures))
        return handled


def _build_feed(venue: Venue, recording: Recording, sink: EventSink) -> Feed:
    feed_class = EXCHANGE_MAP[venue.cryptofeed_id]
    skipped: list[str] = []
    unnamed: set[str] = set()
    replay_class = _replay_feed_class(
        feed_class, _StartupRest(recording.startup, venue.adapter.unrecorded), skipped
    )
    # Recorded channels the installed cryptofeed no longer offers (Coinbase ticker) are left out.
    # Tickers of a venue whose ticker sizes are unknown are parsed and dropped (no callback).
    channels = {
        channel: symbols
        for channel, symbols in recording.configuration.items()
        if channel in feed_class.websocket_channels
    }
    # cryptofeed keeps one symbol table per exchange id for the whole process: lift out any
    # live one while the recording's is built, and put it back so neither leaks into the other.
    kept = Symbols.data.pop(feed_class.id, None)
    # cryptofeed logs a failed start-up with its traceback (exc_info): captured, it becomes part
    # of the one-line error instead of being printed by logging's last-resort handler.
    capture = _WarningCapture()
    logger = logging.getLogger(_CRYPTOFEED_LOGGER)
    logger.addHandler(capture)
    try:
        with capture:
            known = replay_class.symbol_mapping()
            subscription = {
                channel: [current_symbol(symbol, known) for symbol in symbols]
                for channel, symbols in channels.items()
            }
            if recording.single_file:
                subscription = _nameable(subscription, known, unnamed)
            feed = replay_class(
                config=_replay_config(venue),
                subscription=subscription,
                callbacks=sink.callbacks(feed_class.websocket_channels),
                checksum_validation=True,
            )
    except Exception as exc:
        hint = ""
        if recording.single_file and isinstance(exc, LookupError):
            hint = (" (a single-file recording of early 2021 holds no start-up calls: put the "
                    f"exchange's {venue.cryptofeed_id}.0 start-up file beside it)")
        elif skipped:  # a parser that reads the lists by position fails without them
            hint = f" (the recording holds no answer to {', '.join(skipped)})"
        elif isinstance(exc, UnsupportedSymbol):
            # Names legacy_symbols cannot read either, by form or by the exchange's spelling.
            hint = (" (not among the symbols cryptofeed 2.4 lists from the recorded start-up; "
                    "cryptofeed 1.x named some differently)")
        raise ValueError(
            f"{venue.name}: cryptofeed cannot build its feed from the recorded start-up "
            f"data: {describe(exc)}{hint}"
        ) from exc
    finally:
        logger.removeHandler(capture)
        Symbols.data.pop(feed_class.id, None)
        if kept is not None:
            Symbols.data[feed_class.id] = kept
    sink.know_symbols(feed.normalized_symbol_mapping)
    sink.unnamed = unnamed
    feed.http_conn = _SnapshotRest(recording.snapshots, sink)
    return feed


def _nameable(subscription: dict[str, list[str]], known: dict[str, str], unnamed: set[str]
              ) -> dict[str, list[str]]:
    """The subscription without the instruments the start-up lists do not name. A single-file
    recording takes them from another day (its exchange's `NAME.0`): an instrument listed on
    the day of the recording may be gone (Binance's RENBTC-ETH); its messages cannot be named
    and are passed over (`EventSink.names_unnamed`) instead of failing the whole replay."""
    for symbols in subscription.values():
        unnamed.update(letters(symbol) for symbol in symbols if symbol not in known)
    return {channel: [symbol for symbol in symbols if symbol in known]
            for channel, symbols in subscription.items()}


def _replay_feed_class(feed_class: type[Feed], startup: _StartupRest, skipped: list[str]):
    """A subclass of the feed class that carries the recorded start-up answers, so the real
    symbol_mapping() runs on them without patching HTTPSync for the whole process as
    cryptofeed's playback does. Start-up lists the recording lacks go into `skipped`."""

    def recorded_endpoints(cls, endpoint):
        # A recording made by an older cryptofeed holds the symbol lists it asked for (Deribit:
        # BTC and ETH); 2.4.1 asks more of the same kind (USDC, SOL). Asked of what was recorded,
        # the feed knows every recorded instrument; with none recorded it fails on the first.
        addresses = super(replay_class, cls)._symbol_endpoint_prepare(endpoint)
        if isinstance(addresses, list):
            recorded = [a for a in addresses if startup.holds(a)]
            if recorded:
                skipped.extend(a for a in addresses if a not in recorded)
                return recorded
        return addresses

    replay_class = type(
        f"Replayed{feed_class.__name__}",
        (feed_class,),
        {"http_sync": startup, "_symbol_endpoint_prepare": classmethod(recorded_endpoints)},
    )
    return replay_class


# Signs what a feed of a `needs_keys` venue would send; replay sends nothing.
_PLACEHOLDER_KEYS = {"key_id": "replay", "key_secret": "replay", "key_passphrase": "replay"}


def _replay_config(venue: Venue) -> dict:
    config = venue.adapter.feed_config()
    if venue.needs_keys and venue.cryptofeed_id.lower() not in config:
        config = {**config, venue.cryptofeed_id.lower(): dict(_PLACEHOLDER_KEYS)}
    return config


class _StartupRest:
    """Answers the blocking REST calls a feed makes while being built (`HTTPSync.read` and
    `write`)."""

    __slots__ = ("_responses", "_unrecorded")

    def __init__(self, responses: RecordedResponses, unrecorded) -> None:
        self._responses = responses
        self._unrecorded = unrecorded

    def holds(self, address: str) -> bool:
        return self._responses.holds(address) or self._unrecorded(address) is not None

    def read(self, address: str, params=None, headers=None, json=False, text=True, uuid=None):
        body = None if self._responses.holds(address) else self._unrecorded(address)
        if body is None:
            _, body = self._responses.take(address)
        # Decoded as HTTPSync.process_response does, so the parsers see the same types as live.
        return cryptofeed_json.loads(body, parse_float=Decimal) if json else body

    def write(self, address: str, data=None, json=False, text=True, uuid=None,
              is_data_json=False):
        # A POST at start-up (KuCoin asks for its websocket token so), recorded like a GET.
        return self.read(address, json=json, text=text, uuid=uuid)


class _SnapshotRest:
    """Answers the REST calls a running feed makes (`HTTPAsyncConn.read`): book snapshots."""

    __slots__ = ("_responses", "_sink")

    def __init__(self, responses: RecordedResponses, sink: EventSink) -> None:
        self._responses = responses
        self._sink = sink

    async def read(self, address: str, header=None, params=None, return_headers=False,
                   retry_count=0, retry_delay=60) -> str:
        receive_ns, body = self._responses.take_alike(address)
        self._sink.snapshot_times.append(receive_ns)
        return body


class _ReplayConnection:
    """Stands in for the websocket: the feed reads its address, subscription and id, and what
    it writes (subscribe requests) goes nowhere, since the recording already holds what was sent.

    The subscription is the part cryptofeed's `Feed.connect` gives the endpoint at the recorded
    address (Bybit's spot and linear sockets parse differently); where no endpoint has that
    address (a URL the exchange has since retired) one connection carries the whole
    subscription, as cryptofeed's playback does.
    """

    __slots__ = ("address", "id", "subscription", "uuid")

    def __init__(self, feed: Feed, address: str | None) -> None:
        self.address = address or _only_address(feed)
        self.subscription = _subscription_at(feed, address)
        self.id = self.uuid = f"{feed.id}.replay"

    async def write(self, msg: str) -> None:
        pass


def _only_address(feed: Feed) -> str:
    addresses = [endpoint.address for endpoint in feed.websocket_endpoints]
    return addresses[0] if len(addresses) == 1 else ""


def _subscription_at(feed: Feed, address: str | None) -> dict[str, list[str]]:
    everything = {chan: list(symbols) for chan, symbols in feed.subscription.items()}
    matching = [e for e in feed.websocket_endpoints if address and address.startswith(e.address)]
    if not matching:
        return everything
    endpoint = max(matching, key=lambda e: len(e.address))
    std = {
        chan: [feed.exchange_symbol_to_std_symbol(s) for s in symbols]
        for chan, symbols in everything.items()
    }
    return {
        chan: [feed.std_symbol_to_exchange_symbol(s) for s in symbols]
        for chan, symbols in endpoint.subscription_filter(std).items()
        if symbols
    }


class _NoWaitLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps a day at every reading, so a feed's sleeps are due at
    once (Bitstamp waits 5 s before fetching snapshots): replay never waits on wall time."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0

    def time(self) -> float:
        self._now += 86_400.0
        return self._now


class _WarningCapture(logging.Handler):
    """cryptofeed reports messages it cannot use with a logged warning, not an exception;
    collected while active (`with capture:`) so they make the message a dead letter."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._active = False
        self._messages: list[str] = []

    def __enter__(self) -> None:
        self._active = True

    def __exit__(self, *exc_info) -> None:
        self._active = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._active:
            self._messages.append(f"cryptofeed: {record.getMessage()}")

    def take(self) -> list[str]:
        messages, self._messages = self._messages, []
        return messages

