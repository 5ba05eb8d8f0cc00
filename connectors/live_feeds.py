"""Live market data through cryptofeed: a feed for any venue, and a Bytewax source.

The venues are those of `connectors.venues` (every exchange cryptofeed supports), and
cryptofeed's callback objects become events through the same
`connectors.replay.cryptofeed_events.EventSink` the recording replay uses, so a recorded
message and a live one make the same event.

Channels: L2 book and trades everywhere; the ticker (as BBO) only where the venue's descriptor
says where cryptofeed's ticker keeps the best bid/ask sizes (binance's bookTicker, okx's and
bybit's tickers). Elsewhere a consumer takes the touch from the book, as the arbitrage model does.

Start-up checks (`LiveFeedError`): an unknown venue, a symbol that is not unified ccxt form or
that the exchange does not list, an exchange whose instrument list cannot be fetched, and a
feed of a venue whose subscriptions cryptofeed signs (coinbase) without an API key.

Bad input never stops a feed: a message cryptofeed rejects (an exception or a logged warning,
such as an unknown message type or a checksum or sequence break) and a callback object that
cannot be converted become `DeadLetter`s with the reason and the raw message. After an
exception cryptofeed still reconnects, which resubscribes and rebuilds its books from fresh
snapshots.

Times: receive_ts is cryptofeed's receipt time of the message (float seconds, rounded to the
microsecond as exchange times are).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from bytewax.inputs import DynamicSource, StatelessSourcePartition
from cryptofeed import FeedHandler
from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exchanges import EXCHANGE_MAP
from cryptofeed.feed import Feed

from connectors.replay.cryptofeed_events import EventSink, cryptofeed_symbol, describe
from connectors.venues import UnknownVenueError, Venue, venue_for
from models.events import DeadLetter, Event

__all__ = [
    "LiveFeedError",
    "LiveFeedSource",
    "Outbox",
    "build_feed",
    "channels_for",
]

_CRYPTOFEED_LOGGER = "feedhandler"
# cryptofeed's own logging goes to Python logging, not to a `feedhandler.log` in the cwd.
_HANDLER_CONFIG = {"log": {"disabled": True}, "uvloop": False}

_log = logging.getLogger(__name__)


class LiveFeedError(ValueError):
    """A live feed cannot start; the message says which venue or symbol and why."""


class Outbox:
    """Events handed from the feeds' event-loop thread to the flow's worker, in order."""

    __slots__ = ("_events", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []

    def put(self, events: list[Event]) -> None:
        with self._lock:
            self._events.extend(events)

    def take(self) -> list[Event]:
        with self._lock:
            events, self._events = self._events, []
        return events


def channels_for(venue: Venue) -> list[str]:
    channels = [L2_BOOK, TRADES]
    feed_channels = EXCHANGE_MAP[venue.cryptofeed_id].websocket_channels
    if venue.ticker_sizes is not None and TICKER in feed_channels:
        channels.append(TICKER)
    return channels


def build_feed(
    exchange: str,
    symbols: Sequence[str],
    outbox: Outbox,
    *,
    config: Mapping | None = None,
    http_sync=None,
    **feed_options,
) -> Feed:
    """A cryptofeed Feed for `exchange` (ccxt id) and unified `symbols`, calling back into `outbox`.

    `config` is cryptofeed's configuration (API keys per exchange id, e.g.
    `{"coinbase": {"key_id": ..., "key_secret": ...}}`). `http_sync` answers the blocking REST
    calls that list the exchange's instruments (cryptofeed's `HTTPSync` when None: the network).
    `feed_options` go to the Feed (e.g. `retries`).
    """
    venue = _venue(exchange)
    if not symbols:
        raise LiveFeedError(f"{venue.name}: no symbols to subscribe to")
    config = dict(config or {})
    if venue.needs_keys and not _has_keys(config, venue.cryptofeed_id):
        raise LiveFeedError(
            f"{venue.name}: cryptofeed 2.4 signs its subscriptions, even public ones: "
            f"give key_id and key_secret under '{venue.cryptofeed_id.lower()}' in the feed config"
        )
    feed_class = EXCHANGE_MAP[venue.cryptofeed_id]
    if http_sync is not None:
        feed_class = type(feed_class.__name__, (feed_class,), {"http_sync": http_sync})
    names = [_cryptofeed_name(venue, symbol) for symbol in symbols]
    listed = _listed_instruments(venue, feed_class)
    unlisted = [symbol for symbol, name in zip(symbols, names, strict=True) if name not in listed]
    if unlisted:
        raise LiveFeedError(f"{venue.name} does not list {', '.join(unlisted)}")
    callbacks = _Callbacks(venue, outbox)
    feed = feed_class(
        config=config,
        symbols=names,
        channels=channels_for(venue),
        callbacks=callbacks.handlers(),
        checksum_validation=True,
        **feed_options,
    )
    feed.message_handler = callbacks.guard(feed.message_handler)
    return feed


def _venue(exchange: str) -> Venue:
    try:
        venue = venue_for(exchange)
    except UnknownVenueError as exc:
        raise LiveFeedError(f"no live feed: {exc}") from None
    if venue.cryptofeed_id is None:
        raise LiveFeedError(f"no live feed for venue {venue.name}: cryptofeed has none")
    return venue


def _has_keys(config: Mapping, cryptofeed_id: str) -> bool:
    keys = config.get(cryptofeed_id.lower()) or {}
    return bool(keys.get("key_id") and keys.get("key_secret"))


def _cryptofeed_name(venue: Venue, symbol: str) -> str:
    try:
        return cryptofeed_symbol(symbol)
    except ValueError as exc:
        raise LiveFeedError(f"{venue.name}: bad symbol: {exc}") from None


def _listed_instruments(venue: Venue, feed_class: type[Feed]) -> dict:
    try:
        return feed_class.symbol_mapping()
    except Exception as exc:
        raise LiveFeedError(
            f"{venue.name}: cannot list the exchange's instruments ({describe(exc)}); "
            "is the exchange reachable from here?"
        ) from None


# The failures of the message the current task is handling, for cryptofeed's logged warnings.
_message_failures: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "cryptofeed_message_failures", default=None
)


class _WarningsToMessage(logging.Handler):
    """cryptofeed reports a message it cannot use with a logged warning, not an exception: the
    warning becomes a failure of the message being handled in the same asyncio task."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        failures = _message_failures.get()
        if failures is not None:
            failures.append(f"cryptofeed: {record.getMessage()}")


_WARNINGS = _WarningsToMessage()


class _Callbacks:
    """One venue's cryptofeed callbacks and message guard, putting events into an outbox."""

    __slots__ = ("_outbox", "_sink", "_source", "dead_letters")

    def __init__(self, venue: Venue, outbox: Outbox) -> None:
        self._sink = EventSink(venue.name, venue.ticker_sizes)
        self._outbox = outbox
        self._source = f"cryptofeed:{venue.name}:live"
        self.dead_letters = 0

    def handlers(self) -> dict[str, Callable]:
        sink = self._sink
        return {
            L2_BOOK: self._forward(sink.on_book),
            TRADES: self._forward(sink.on_trade),
            TICKER: self._forward(sink.on_ticker),
        }

    def _forward(self, convert: Callable) -> Callable:
        sink, outbox = self._sink, self._outbox

        async def forward(obj, receipt: float) -> None:
            receive_ns = sink.receive_ns = _receipt_ns(receipt)
            await convert(obj, receipt)
            events, failures = sink.take()
            if failures:
                raw = json.dumps(getattr(obj, "raw", None) or str(obj), default=str)
                events.append(self._dead_letter("; ".join(failures), raw, receive_ns))
            outbox.put(events)

        return forward

    def guard(self, handle: Callable) -> Callable:
        """`handle` (a feed's message_handler) with what it rejects dead-lettered."""
        logging.getLogger(_CRYPTOFEED_LOGGER).addHandler(_WARNINGS)  # once: same handler

        async def guarded(message: str | bytes, conn, timestamp: float) -> None:
            failures: list[str] = []
            token = _message_failures.set(failures)
            try:
                await handle(message, conn, timestamp)
            except Exception as exc:
                failures.append(describe(exc))
                raise  # cryptofeed reconnects: resubscribed, its books restart from snapshots
            finally:
                _message_failures.reset(token)
                if failures:
                    letter = self._dead_letter("; ".join(failures), message, _receipt_ns(timestamp))
                    self._outbox.put([letter])

        return guarded

    def _dead_letter(self, reason: str, raw: str | bytes, receive_ns: int) -> DeadLetter:
        self.dead_letters += 1
        # Powers of two: a flood of bad input logs a few lines, not one per message.
        if self.dead_letters & (self.dead_letters - 1) == 0:
            _log.warning("%s: %d dead letters so far; latest: %s",
                         self._source, self.dead_letters, reason)
        if isinstance(raw, bytes):
            try:
                raw = raw.decode()
            except UnicodeDecodeError:
                return DeadLetter(source=self._source, reason=reason, receive_ts=receive_ns,
                                  raw=base64.b64encode(raw).decode(), raw_encoding="base64")
        return DeadLetter(source=self._source, reason=reason, raw=raw, receive_ts=receive_ns)


def _receipt_ns(seconds: float) -> int:
    return round(seconds * 1_000_000) * 1_000


class LiveFeedSource(DynamicSource[list[Event]]):
    """Chunks of live events from cryptofeed feeds, per venue: `{"kraken": ["BTC/USD"], ...}`.

    The feeds are built (instruments listed, symbols checked) here, so configuration errors
    stop the process before any flow starts. Each worker runs the feeds of its share of the
    venues on a FeedHandler whose asyncio loop lives in a thread of its own, and hands on
    what they delivered since its last poll as one chunk. `stop()` ends the source once what
    the feeds delivered so far has been handed on.
    """

    def __init__(
        self,
        instruments: Mapping[str, Sequence[str]],
        *,
        config: Mapping | None = None,
        http_sync=None,
        poll_interval_s: float = 0.005,
        **feed_options,
    ) -> None:
        if not instruments:
            raise LiveFeedError("no venues to subscribe to")
        self.outboxes = {venue: Outbox() for venue in instruments}
        self.feeds = {
            venue: build_feed(venue, symbols, self.outboxes[venue], config=config,
                              http_sync=http_sync, **feed_options)
            for venue, symbols in instruments.items()
        }
        self._poll_interval = timedelta(seconds=poll_interval_s)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FeedHandlerPartition:
        venues = list(self.feeds)[worker_index::worker_count]
        return _FeedHandlerPartition(
            [self.feeds[v] for v in venues], [self.outboxes[v] for v in venues],
            self._poll_interval, self._stop,
        )


class _FeedHandlerPartition(StatelessSourcePartition[list[Event]]):
    def __init__(
        self,
        feeds: list[Feed],
        outboxes: list[Outbox],
        poll_interval: timedelta,
        stop: threading.Event,
    ) -> None:
        self._outboxes = outboxes
        self._poll_interval = poll_interval
        self._stop = stop
        self._awake: datetime | None = None
        self._failure: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(feeds,), daemon=True,
                                        name="cryptofeed")
        if feeds:
            self._thread.start()

    def _run(self, feeds: list[Feed]) -> None:
        asyncio.set_event_loop(self._loop)
        handler = FeedHandler(config=_HANDLER_CONFIG)
        for feed in feeds:
            handler.add_feed(feed)
        handler.run(install_signal_handlers=False, exception_handler=self._on_loop_error)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # cryptofeed gives up on a connection after its retries (ExhaustedRetries): the
        # source must fail rather than idle as if the market were quiet.
        self._failure = context.get("exception") or RuntimeError(context.get("message"))
        loop.default_exception_handler(context)

    def next_batch(self) -> list[list[Event]]:
        if not self._outboxes:
            raise StopIteration  # more workers than venues: nothing to read here
        stopping = self._stop.is_set()
        failure = self._failure
        chunk: list[Event] = []
        for outbox in self._outboxes:
            chunk.extend(outbox.take())
        if chunk:  # what was delivered goes on before a stop or a failure ends the source
            self._awake = None
            return [chunk]
        if stopping:
            raise StopIteration
        if failure is not None:
            raise LiveFeedError(f"live feed stopped: {describe(failure)}") from failure
        self._awake = datetime.now(UTC) + self._poll_interval
        return []

    def next_awake(self) -> datetime | None:
        return self._awake

    def close(self) -> None:
        if self._thread.is_alive():
            # run_forever returns; FeedHandler.run then shuts the feeds down and closes the loop.
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        elif not self._loop.is_closed():
            self._loop.close()
