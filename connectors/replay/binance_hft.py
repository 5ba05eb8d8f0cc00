"""Replay of Binance market data recorded in hftbacktest's format into quoteflow events.

hftbacktest records one message per line, `<local receive time, ns> <raw JSON>`, gzip-compressed:
Binance combined-stream envelopes (`{"stream": "btcusdt@depth@100ms", "data": {...}}`) for the
diff-depth, bookTicker and trade streams, plus the REST depth snapshot as a bare
`{"lastUpdateId": ..., "bids": [...], "asks": [...]}` line.

Why not cryptofeed, the project's live parsing library: its Binance handlers drop the update
ids `U`/`u`/`pu` that the book's sequencing rules need, fetch their own snapshots over HTTP
instead of reading the recorded one, and do not handle the raw `@trade` stream. This module is
therefore a dedicated decoder for this format, built on msgspec typed decoders (prices and sizes
become exact `Decimal`s straight from Binance's strings). Depth levels, most of the data, are
left raw by msgspec and parsed by the compiled book's `Levels` (exact numbers the book reads
without a `Decimal`; see `models.events`); a level that is not a decimal number, or holds
one of 1e31 or more (`models.event_bounds`' bound, which `Levels` keeps), is a `bad_message`
dead letter.

Conventions:
- venue and symbol are per file, identified from the file's first depth diff: futures diffs
  carry `pu`, spot diffs do not; COIN-M symbols name a contract (`ETHUSD_PERP`,
  `BTCUSD_240927`), USD-M ones a pair. So `binance`, `binanceusdm` or `binancecoinm`; the
  diff's `s` gives the symbol, unified as `BTC/USDT` (spot), `BTC/USDT:USDT` (USD-M perpetual),
  `ETH/USD:ETH` (COIN-M perpetual, inverse: sizes in contracts, settled in ETH) or
  `BTC/USD:BTC-240927` (COIN-M quarterly). Both can be passed explicitly instead. Messages of
  another symbol's streams are dead letters.
- exchange_ts is when it happened at the exchange, in ns: the transaction time `T` (ms) where
  the message has one (trades; futures depth and bookTicker), else the event time `E`, which
  is when the message was made, 1-10 ms later on these files. A trade stamped with `E` could
  fill, in a backtest, an order that reached the exchange after the trade happened. Spot
  bookTicker messages and the spot REST snapshot carry neither: their exchange_ts is their
  receive_ts moved onto the exchange clock by the largest lead of an event time `E` over its
  receive time seen so far in the file (the recorder's clock can run a second or more behind
  the exchange's; the largest lead is the fastest delivery seen), or receive_ts itself before
  any message with `E`. Stamped with the receive time alone, a spot touch would look older
  than the depth and trades around it by the whole clock offset.
- trades: `m` true means the buyer was the maker, so the taker sold (side "sell").
- bad input never raises: an unreadable line, a message missing fields or with a bad number, an
  unknown stream and a truncated or corrupt gzip become `DeadLetter` events whose reason starts
  with a stable code (`bad_timestamp`, `bad_message`, `unknown_stream`, `bad_file`), and reading
  goes on (or ends cleanly at a broken gzip).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO

import msgspec

from models.events import (
    BBO,
    AnyMarketEvent,
    BookDelta,
    BookSnapshot,
    DeadLetter,
    Levels,
    LevelsError,
    Trade,
)

ReplayEvent = AnyMarketEvent | DeadLetter

_NS_PER_MS = 1_000_000
# Longest quote assets first, so `...FDUSD` is not read as `...USD`-something.
_QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
# How far into a file to look for the first depth diff that identifies venue and symbol.
_IDENTIFY_MAX_LINES = 10_000


class _Envelope(msgspec.Struct):
    # Both absent on the REST snapshot line, whose own keys are skipped here.
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()


class _DepthDiff(msgspec.Struct, kw_only=True):
    symbol: str = msgspec.field(name="s")
    event_ms: int = msgspec.field(name="E")
    transaction_ms: int | None = msgspec.field(default=None, name="T")
    first_id: int = msgspec.field(name="U")
    last_id: int = msgspec.field(name="u")
    prev_last_id: int | None = msgspec.field(default=None, name="pu")
    # Raw JSON arrays of [price, size], parsed by `Levels`.
    bids: msgspec.Raw = msgspec.field(name="b")
    asks: msgspec.Raw = msgspec.field(name="a")


class _RestDepth(msgspec.Struct, kw_only=True):
    last_update_id: int = msgspec.field(name="lastUpdateId")
    event_ms: int | None = msgspec.field(default=None, name="E")
    bids: msgspec.Raw
    asks: msgspec.Raw


class _BookTicker(msgspec.Struct, kw_only=True):
    update_id: int = msgspec.field(name="u")
    event_ms: int | None = msgspec.field(default=None, name="E")
    transaction_ms: int | None = msgspec.field(default=None, name="T")
    bid_price: Decimal = msgspec.field(name="b")
    bid_size: Decimal = msgspec.field(name="B")
    ask_price: Decimal = msgspec.field(name="a")
    ask_size: Decimal = msgspec.field(name="A")


class _Trade(msgspec.Struct, kw_only=True):
    event_ms: int = msgspec.field(name="E")
    transaction_ms: int | None = msgspec.field(default=None, name="T")
    trade_id: int = msgspec.field(name="t")
    price: Decimal = msgspec.field(name="p")
    size: Decimal = msgspec.field(name="q")
    buyer_is_maker: bool = msgspec.field(name="m")


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_decode_depth = msgspec.json.Decoder(_DepthDiff).decode
_decode_rest_depth = msgspec.json.Decoder(_RestDepth).decode
_decode_book_ticker = msgspec.json.Decoder(_BookTicker).decode
_decode_trade = msgspec.json.Decoder(_Trade).decode


class ReplayStats:
    """What a replay read: events per type tag, and dead letters per reason code."""

    __slots__ = ("_by_type", "dead_letter_reasons", "lines")

    def __init__(self) -> None:
        self.lines = 0
        # Per event class, in order of first appearance; named by their tags only when read
        # (each event's tag looked up and counted cost 0.3 µs an event, 6% of the decoding).
        self._by_type: defaultdict[type, int] = defaultdict(int)
        self.dead_letter_reasons: Counter[str] = Counter()

    def count(self, event: ReplayEvent) -> None:
        kind = type(event)
        self._by_type[kind] += 1
        if kind is DeadLetter:
            self.dead_letter_reasons[event.reason.partition(":")[0]] += 1

    @property
    def events(self) -> Counter[str]:
        """Events per type tag (`book_delta`, `bbo`, ...), in order of first appearance."""
        return Counter({kind.__struct_config__.tag: n for kind, n in self._by_type.items()})

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "events": dict(self.events),
            "dead_letter_reasons": dict(self.dead_letter_reasons),
        }


def unified_symbol(exchange_symbol: str, venue: str) -> str:
    """`BTCUSDT` -> `BTC/USDT` on spot, `BTC/USDT:USDT` on USD-M (linear perpetuals);
    `ETHUSD_PERP` -> `ETH/USD:ETH` and `BTCUSD_240927` -> `BTC/USD:BTC-240927` on COIN-M."""
    if venue == "binancecoinm":
        pair, _, contract = exchange_symbol.partition("_")
        base = pair[:-3]
        if not (pair.endswith("USD") and base and (contract == "PERP" or _is_yymmdd(contract))):
            raise ValueError(f"not a COIN-M contract BASEUSD_PERP or BASEUSD_YYMMDD: "
                             f"{exchange_symbol!r}")
        return f"{base}/USD:{base}" + ("" if contract == "PERP" else f"-{contract}")
    for quote in _QUOTE_ASSETS:
        base = exchange_symbol[: -len(quote)]
        if exchange_symbol.endswith(quote) and base:
            return f"{base}/{quote}:{quote}" if venue == "binanceusdm" else f"{base}/{quote}"
    raise ValueError(f"cannot split {exchange_symbol!r} into base and quote")


def _is_yymmdd(text: str) -> bool:
    return len(text) == 6 and text.isdigit()


def _futures_venue(exchange_symbol: str) -> str:
    # COIN-M contracts are named BASEUSD_PERP or BASEUSD_YYMMDD; USD-M perpetuals by the pair.
    return "binancecoinm" if "_" in exchange_symbol else "binanceusdm"


class _LineDecoder:
    """Turns one recorded line of one instrument's file into an event or a dead letter."""

    __slots__ = ("_handlers", "_lead_ns", "_stream_prefix", "source", "symbol", "venue")

    def __init__(self, source: str, venue: str, symbol: str, exchange_symbol: str) -> None:
        self.source = source
        self.venue = venue
        self.symbol = symbol
        self._stream_prefix = exchange_symbol.lower()
        self._handlers: dict[str, Callable[[bytes, int], AnyMarketEvent] | None] = {}
        self._lead_ns: int | None = None  # exchange clock minus receive clock, largest seen

    def _on_exchange_clock(self, event_ms: int | None, receive_ts: int) -> int:
        """receive_ts on the exchange clock; `event_ms` (the message's `E`) updates the lead."""
        lead = self._lead_ns
        if event_ms is not None:
            seen = event_ms * _NS_PER_MS - receive_ts
            if lead is None or seen > lead:
                lead = self._lead_ns = seen
        return receive_ts if lead is None else receive_ts + lead

    def decode(self, line: bytes, line_no: int) -> ReplayEvent:
        ts_text, _, payload = line.partition(b" ")
        try:
            receive_ts = int(ts_text)
        except ValueError:
            return self._dead(line, line_no, None, "bad_timestamp: line must start with ns time")
        try:
            envelope = _decode_envelope(payload)
            if envelope.stream is None:
                return self._snapshot(payload, receive_ts)
            handler = self._handler(envelope.stream)
            if handler is None or not envelope.data:
                return self._dead(line, line_no, receive_ts, f"unknown_stream: {envelope.stream}")
            return handler(envelope.data, receive_ts)
        except (msgspec.DecodeError, LevelsError) as exc:
            return self._dead(line, line_no, receive_ts, f"bad_message: {exc}")

    def _handler(self, stream: str) -> Callable[[bytes, int], AnyMarketEvent] | None:
        try:
            return self._handlers[stream]
        except KeyError:
            handler = self._handlers[stream] = self._resolve(stream)
            return handler

    def _resolve(self, stream: str) -> Callable[[bytes, int], AnyMarketEvent] | None:
        prefix, _, channel = stream.partition("@")
        if prefix != self._stream_prefix:
            return None
        if channel == "depth" or channel.startswith("depth@"):
            return self._delta
        if channel == "bookTicker":
            return self._bbo
        if channel == "trade":
            return self._trade
        return None

    def _delta(self, data: bytes, receive_ts: int) -> BookDelta:
        diff = _decode_depth(data)
        self._on_exchange_clock(diff.event_ms, receive_ts)
        return BookDelta(
            venue=self.venue, symbol=self.symbol,
            exchange_ts=(diff.transaction_ms or diff.event_ms) * _NS_PER_MS,
            receive_ts=receive_ts,
            seq=diff.last_id, first_seq=diff.first_id, prev_seq=diff.prev_last_id,
            bids=Levels(diff.bids), asks=Levels(diff.asks),
        )

    def _snapshot(self, payload: bytes, receive_ts: int) -> BookSnapshot:
        depth = _decode_rest_depth(payload)
        event_ms = depth.event_ms
        return BookSnapshot(
            venue=self.venue, symbol=self.symbol,
            exchange_ts=(
                self._on_exchange_clock(None, receive_ts) if event_ms is None
                else event_ms * _NS_PER_MS
            ),
            receive_ts=receive_ts, seq=depth.last_update_id,
            bids=Levels(depth.bids), asks=Levels(depth.asks),
        )

    def _bbo(self, data: bytes, receive_ts: int) -> BBO:
        ticker = _decode_book_ticker(data)
        event_ms = ticker.transaction_ms or ticker.event_ms
        return BBO(
            venue=self.venue, symbol=self.symbol,
            exchange_ts=(
                self._on_exchange_clock(ticker.event_ms, receive_ts) if event_ms is None
                else event_ms * _NS_PER_MS
            ),
            receive_ts=receive_ts, seq=ticker.update_id,
            bid_price=ticker.bid_price, bid_size=ticker.bid_size,
            ask_price=ticker.ask_price, ask_size=ticker.ask_size,
        )

    def _trade(self, data: bytes, receive_ts: int) -> Trade:
        trade = _decode_trade(data)
        self._on_exchange_clock(trade.event_ms, receive_ts)
        return Trade(
            venue=self.venue, symbol=self.symbol,
            exchange_ts=(trade.transaction_ms or trade.event_ms) * _NS_PER_MS,
            receive_ts=receive_ts,
            price=trade.price, size=trade.size,
            side="sell" if trade.buyer_is_maker else "buy", trade_id=str(trade.trade_id),
        )

    def _dead(self, line: bytes, line_no: int, receive_ts: int | None, reason: str) -> DeadLetter:
        return DeadLetter(
            source=f"{self.source}:{line_no}", reason=reason,
            raw=line.decode("utf-8", "replace").rstrip("\n"), receive_ts=receive_ts,
        )


def _open(path: Path) -> IO[bytes]:
    if path.suffix != ".gz":
        return path.open("rb")
    # GzipFile.readline is Python code per line; a BufferedReader on top splits lines in C.
    return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 16)


# What a damaged gzip raises while being read: truncation, bad header, bad deflate data.
_BROKEN_FILE_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _identify(path: Path) -> tuple[str, str] | str:
    """(venue, exchange symbol) from the file's first depth diff, or why it could not be told."""
    try:
        with _open(path) as lines:
            for _, line in zip(range(_IDENTIFY_MAX_LINES), lines, strict=False):
                try:
                    envelope = _decode_envelope(line.partition(b" ")[2])
                    if envelope.stream is None or "@depth" not in envelope.stream:
                        continue
                    diff = _decode_depth(envelope.data)
                except msgspec.DecodeError:
                    continue
                if diff.prev_last_id is None:
                    return "binance", diff.symbol
                return _futures_venue(diff.symbol), diff.symbol
    except _BROKEN_FILE_ERRORS as exc:
        return f"bad_file: {exc}"
    return f"bad_file: no depth diff in the first {_IDENTIFY_MAX_LINES} lines to name the venue"


def iter_events(
    path: str | Path,
    *,
    venue: str | None = None,
    exchange_symbol: str | None = None,
    stats: ReplayStats | None = None,
) -> Iterator[ReplayEvent]:
    """Events of one recorded instrument file, in file order.

    `venue` (`binance`, `binanceusdm` or `binancecoinm`) and `exchange_symbol` (`BTCUSDT`,
    `ETHUSD_PERP`) override what the file's first depth diff says. `stats`, when given, is
    updated as events are yielded.
    """
    path = Path(path)
    source = str(path)
    if venue is None or exchange_symbol is None:
        identified = _identify(path)
        if isinstance(identified, str):
            yield _counted(stats, DeadLetter(source=source, reason=identified, raw=""))
            return
        venue = venue or identified[0]
        exchange_symbol = exchange_symbol or identified[1]
    try:
        symbol = unified_symbol(exchange_symbol, venue)
    except ValueError as exc:
        yield _counted(stats, DeadLetter(source=source, reason=f"bad_file: {exc}", raw=""))
        return
    decoder = _LineDecoder(source, venue, symbol, exchange_symbol)
    line_no = 0
    try:
        with _open(path) as lines:
            for line_no, line in enumerate(lines, 1):
                event = decoder.decode(line, line_no)
                if stats is not None:
                    stats.lines += 1
                    stats.count(event)
                yield event
    except _BROKEN_FILE_ERRORS as exc:
        reason = f"bad_file: gzip broken after line {line_no}: {exc}"
        yield _counted(stats, DeadLetter(source=source, reason=reason, raw=""))


def _counted(stats: ReplayStats | None, event: ReplayEvent) -> ReplayEvent:
    if stats is not None:
        stats.count(event)
    return event
