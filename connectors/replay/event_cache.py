"""A columnar cache of decoded recordings: decode once, replay every later backtest from it.

`open_recordings(paths, cache_dir)` returns what `Recordings(paths)` does (`events()`,
`stats()`), served from `cache_dir` when an entry for exactly these inputs exists. The first
run decodes as usual and writes the entry when the replay has been read to its end (an
interrupted run writes nothing), atomically (a temporary file renamed into place), so
concurrent runs of a sweep at worst both write the same entry.

The key is a SHA-256 over
- the cache format (`FORMAT`) and the decoder version (`decoder_version()`: a hash of the
  decoding modules' source, of any compiled module they use, and of the cryptofeed and
  msgspec versions), so a decoder change is a miss, never a stale hit;
- each input path as given (dead letters name their file) and the full SHA-256 of every file
  the replay reads. Hashing is ~1.2 ms per MB (4.5 ms for the 3.6 MB USD-M file), small
  beside the load, and unlike size + mtime it catches a file rewritten in place.

Layout (one uncompressed `.npz`): per event a kind code, the two timestamps, the three
optional sequence numbers (with a null mask), string codes for venue, symbol and trade id,
and decimal codes for prices and sizes; the book levels as flat price/size code arrays cut by
offsets. Every `Decimal` is stored once as its exact text (`str` round-trips value and
exponent) in a dictionary, so loading builds each distinct price once and shares it instead
of parsing every level: that is where decoding spends its time. Book sides come back as
`Levels` (`models.events`; `LevelTable` parses each distinct text once), whose `Decimal`s are
made only when read, as the Binance decoder's are; a side with a number `Levels` does not
take (a price finer than 10^-18, a number of 1e31 or more) comes back as its `Decimal` pairs.
Dead letters (rare, free text) are kept whole as msgspec JSON. The events loaded equal the
decoded ones field for field.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np

from connectors.replay.recordings import Recordings, ReplayEvent
from models.events import BBO, BookDelta, BookSnapshot, DeadLetter, Levels, LevelTable, Trade

FORMAT = 1
_HERE = Path(__file__).resolve().parent
# What decides the events a recording decodes to; a change to any of them is a new key.
_DECODER_SOURCES = (*sorted(_HERE.glob("*.py")), _HERE.parent.parent / "models" / "events.py")
_DECODER_PACKAGES = ("cryptofeed", "msgspec")
# Compiled modules the decoding may run (issue 10's Rust book/decoder): their built file counts.
_DECODER_EXTENSIONS = ("quoteflow_book",)

_SNAPSHOT, _DELTA, _BBO, _TRADE, _DEAD = range(5)
_NO_SEQ, _NO_FIRST, _NO_PREV, _NO_TRADE_ID = 1, 2, 4, 8
_SIDES = ("buy", "sell")
_dead_letters = msgspec.json.Decoder(list[DeadLetter])


def decoder_version() -> str:
    digest = hashlib.sha256()
    for path in _DECODER_SOURCES:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for package in _DECODER_PACKAGES:
        digest.update(f"{package}={importlib.metadata.version(package)}".encode())
    for name in _DECODER_EXTENSIONS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin)
        # A package (maturin's layout) holds the built library beside its __init__.py.
        files = sorted(origin.parent.iterdir()) if spec.submodule_search_locations else [origin]
        for file in files:
            if file.is_file():
                digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def cache_key(recordings: Recordings, paths: Sequence[str | Path]) -> str:
    digest = hashlib.sha256(f"quoteflow-events {FORMAT} {decoder_version()}".encode())
    for path in paths:
        digest.update(b"input\0" + str(Path(path)).encode())
    for path in recordings.source_files():
        with path.open("rb") as file:
            digest.update(path.name.encode() + b"\0" + hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


def open_recordings(
    paths: Sequence[str | Path], cache_dir: Path | None
) -> Recordings | CachedRecordings:
    """`Recordings(paths)`, or the same events through the cache in `cache_dir`."""
    return Recordings(paths) if cache_dir is None else CachedRecordings(paths, cache_dir)


class CachedRecordings:
    """`Recordings` with a cache entry: read from it when present, written on a full replay."""

    def __init__(self, paths: Sequence[str | Path], cache_dir: Path) -> None:
        self._recordings = Recordings(paths)
        self.path = Path(cache_dir) / f"{cache_key(self._recordings, paths)}.npz"
        self._stats: dict | None = None
        self.hit: bool | None = None  # known once events() has been called

    def events(self) -> Iterator[ReplayEvent]:
        loaded = _load(self.path)
        self.hit = loaded is not None
        if loaded is None:
            return self._decode_and_write()
        events, self._stats = loaded
        return iter(events)

    def stats(self) -> dict:
        return self._stats if self._stats is not None else self._recordings.stats()

    def _decode_and_write(self) -> Iterator[ReplayEvent]:
        writer = _Writer()
        for event in self._recordings.events():
            writer.add(event)
            yield event
        writer.write(self.path, self._recordings.stats())


class _Writer:
    """Columns gathered while the replay is read (decoding is not done twice)."""

    def __init__(self) -> None:
        self.kind: list[int] = []
        self.version: list[int] = []
        self.flags: list[int] = []
        self.venue: list[int] = []
        self.symbol: list[int] = []
        self.exchange_ts: list[int] = []
        self.receive_ts: list[int] = []
        self.seq: list[int] = []
        self.first_seq: list[int] = []
        self.prev_seq: list[int] = []
        self.values: list[int] = []  # 4 decimal codes per event (BBO; trade price, size)
        self.side: list[int] = []
        self.trade_id: list[int] = []
        self.level_offsets: list[int] = [0]
        self.level_price: list[int] = []
        self.level_size: list[int] = []
        self.dead: list[DeadLetter] = []
        self._strings: dict[str, int] = {}
        self._decimals: dict[str, int] = {}

    def _string(self, text: str) -> int:
        code = self._strings.get(text)
        if code is None:
            code = self._strings[text] = len(self._strings)
        return code

    def _decimal(self, value: Decimal) -> int:
        return self._decimal_text(str(value))

    def _decimal_text(self, text: str) -> int:
        code = self._decimals.get(text)
        if code is None:
            code = self._decimals[text] = len(self._decimals)
        return code

    def _levels(self, levels: list | Levels) -> None:
        # A decoder's `Levels` gives the texts of its pairs without making their Decimals.
        pairs = levels.texts() if type(levels) is Levels else [
            (str(price), str(size)) for price, size in levels]
        for price, size in pairs:
            self.level_price.append(self._decimal_text(price))
            self.level_size.append(self._decimal_text(size))
        self.level_offsets.append(len(self.level_price))

    def add(self, event: ReplayEvent) -> None:
        kind = type(event)
        if kind is BookSnapshot or kind is BookDelta:
            self._levels(event.bids)
            self._levels(event.asks)
        else:
            self.level_offsets += (self.level_offsets[-1],) * 2
        if kind is DeadLetter:
            self.dead.append(event)
            self._row(_DEAD, event.v, -1, -1, 0, 0, None, None, None, (-1,) * 4, 0, None)
            return
        values = (-1,) * 4
        first = prev = trade_id = None
        side = 0
        if kind is BookDelta:
            code, first, prev = _DELTA, event.first_seq, event.prev_seq
        elif kind is BookSnapshot:
            code = _SNAPSHOT
        elif kind is BBO:
            code = _BBO
            values = tuple(map(self._decimal, (
                event.bid_price, event.bid_size, event.ask_price, event.ask_size)))
        elif kind is Trade:
            code, side, trade_id = _TRADE, _SIDES.index(event.side), event.trade_id
            values = (self._decimal(event.price), self._decimal(event.size), -1, -1)
        else:
            raise TypeError(f"no cache column for {kind.__name__}")
        self._row(code, event.v, self._string(event.venue), self._string(event.symbol),
                  event.exchange_ts, event.receive_ts, event.seq, first, prev, values, side,
                  trade_id)

    def _row(self, kind, version, venue, symbol, exchange_ts, receive_ts, seq, first, prev,
             values, side, trade_id) -> None:
        flags = ((seq is None) * _NO_SEQ | (first is None) * _NO_FIRST
                 | (prev is None) * _NO_PREV | (trade_id is None) * _NO_TRADE_ID)
        self.kind.append(kind)
        self.version.append(version)
        self.flags.append(flags)
        self.venue.append(venue)
        self.symbol.append(symbol)
        self.exchange_ts.append(exchange_ts)
        self.receive_ts.append(receive_ts)
        self.seq.append(seq or 0)
        self.first_seq.append(first or 0)
        self.prev_seq.append(prev or 0)
        self.values += values
        self.side.append(side)
        self.trade_id.append(-1 if trade_id is None else self._string(trade_id))

    def write(self, path: Path, stats: dict) -> None:
        try:
            arrays = {
                "kind": np.array(self.kind, dtype=np.uint8),
                "version": np.array(self.version, dtype=np.int64),
                "flags": np.array(self.flags, dtype=np.uint8),
                "venue": np.array(self.venue, dtype=np.int32),
                "symbol": np.array(self.symbol, dtype=np.int32),
                "exchange_ts": np.array(self.exchange_ts, dtype=np.int64),
                "receive_ts": np.array(self.receive_ts, dtype=np.int64),
                "seq": np.array(self.seq, dtype=np.int64),
                "first_seq": np.array(self.first_seq, dtype=np.int64),
                "prev_seq": np.array(self.prev_seq, dtype=np.int64),
                "values": np.array(self.values, dtype=np.int32),
                "side": np.array(self.side, dtype=np.uint8),
                "trade_id": np.array(self.trade_id, dtype=np.int32),
                "level_offsets": np.array(self.level_offsets, dtype=np.int64),
                "level_price": np.array(self.level_price, dtype=np.int32),
                "level_size": np.array(self.level_size, dtype=np.int32),
                "strings": _blob(list(self._strings)),
                "decimals": _blob(list(self._decimals)),
                "dead_letters": np.frombuffer(msgspec.json.encode(self.dead), dtype=np.uint8),
                "stats": _blob(stats),
            }
        except OverflowError:
            return  # a number beyond int64 (no venue sends one): replay without a cache
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as file:
                np.savez(file, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _blob(value) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def _unblob(array: np.ndarray):
    return msgspec.json.decode(array.tobytes())


def _load(path: Path) -> tuple[list[ReplayEvent], dict] | None:
    """The cached events and replay stats, or None when there is no usable entry (a damaged
    one is removed and decoded again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as npz:
            columns = {name: npz[name] for name in npz.files}
        return _events(columns), _unblob(columns["stats"])
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError,
            msgspec.DecodeError):
        path.unlink(missing_ok=True)
        return None


def _events(c: dict[str, np.ndarray]) -> list[ReplayEvent]:
    # Hundreds of thousands of acyclic tuples and structs: the cyclic GC's passes over them
    # while they are made would cost as much as making them (measured: 0.4 s vs 0.2 s).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_events(c)
    finally:
        if enabled:
            gc.enable()


def _build_events(c: dict[str, np.ndarray]) -> list[ReplayEvent]:
    texts = _unblob(c["decimals"])
    decimals = [Decimal(text) for text in texts]
    strings = _unblob(c["strings"])
    dead = iter(_dead_letters.decode(c["dead_letters"].tobytes()))
    # Book sides come back as `Levels` (the book reads them without a Decimal), or as the
    # Decimal pairs for a side `Levels` does not take (a price off its 10^-18 grid).
    table = LevelTable(texts, c["level_price"], c["level_size"])
    pairs: list[tuple[Decimal, Decimal]] = []

    def levels_at(start: int, end: int) -> Levels | list[tuple[Decimal, Decimal]]:
        levels = table.levels(start, end)
        if levels is not None:
            return levels
        if not pairs:
            level = decimals.__getitem__
            pairs.extend(zip(map(level, c["level_price"].tolist()),
                             map(level, c["level_size"].tolist()), strict=True))
        return pairs[start:end]

    offsets = c["level_offsets"].tolist()
    values = c["values"].tolist()
    trade_ids = c["trade_id"].tolist()
    events: list[ReplayEvent] = []
    append = events.append
    rows = zip(c["kind"].tolist(), c["version"].tolist(), c["flags"].tolist(),
               c["venue"].tolist(), c["symbol"].tolist(), c["exchange_ts"].tolist(),
               c["receive_ts"].tolist(), c["seq"].tolist(), c["first_seq"].tolist(),
               c["prev_seq"].tolist(), c["side"].tolist(), strict=True)
    for i, (kind, v, flags, venue, symbol, exchange_ts, receive_ts, seq, first, prev,
            side) in enumerate(rows):
        if kind == _DEAD:
            append(next(dead))
            continue
        seq = None if flags & _NO_SEQ else seq
        venue, symbol = strings[venue], strings[symbol]
        if kind == _DELTA:
            append(BookDelta(
                v=v, venue=venue, symbol=symbol, exchange_ts=exchange_ts, receive_ts=receive_ts,
                seq=seq, bids=levels_at(offsets[2 * i], offsets[2 * i + 1]),
                asks=levels_at(offsets[2 * i + 1], offsets[2 * i + 2]),
                first_seq=None if flags & _NO_FIRST else first,
                prev_seq=None if flags & _NO_PREV else prev,
            ))
        elif kind == _BBO:
            bp, bs, ap, as_ = values[4 * i:4 * i + 4]
            append(BBO(
                v=v, venue=venue, symbol=symbol, exchange_ts=exchange_ts, receive_ts=receive_ts,
                seq=seq, bid_price=decimals[bp], bid_size=decimals[bs],
                ask_price=decimals[ap], ask_size=decimals[as_],
            ))
        elif kind == _TRADE:
            append(Trade(
                v=v, venue=venue, symbol=symbol, exchange_ts=exchange_ts, receive_ts=receive_ts,
                seq=seq, price=decimals[values[4 * i]], size=decimals[values[4 * i + 1]],
                side=_SIDES[side],
                trade_id=None if flags & _NO_TRADE_ID else strings[trade_ids[i]],
            ))
        elif kind == _SNAPSHOT:
            append(BookSnapshot(
                v=v, venue=venue, symbol=symbol, exchange_ts=exchange_ts, receive_ts=receive_ts,
                seq=seq, bids=levels_at(offsets[2 * i], offsets[2 * i + 1]),
                asks=levels_at(offsets[2 * i + 1], offsets[2 * i + 2]),
            ))
        else:
            raise ValueError(f"unknown event kind {kind} in the cache")
    return events
