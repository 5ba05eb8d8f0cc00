"""One entry point for every recording format quoteflow replays.

- hftbacktest's Binance files (`<ns> <json>` lines, usually gzip): `binance_hft`;
- cryptofeed's raw-data recordings of any exchange cryptofeed supports, named by their
  websocket file (`KRAKEN.ws.50.0`, `BIT.COM.ws.1.0`, or with the recorder's id
  `BYBIT-1a2b3c.ws.1.0`; the start-up and snapshot files beside it are found from it):
  `cryptofeed_recording`.

A recording that cannot be replayed at all (an exchange no venue descriptor knows, missing
start-up files, start-up data cryptofeed cannot build its feed from) raises `RecordingError`
with a one-line message; damaged messages inside a recording are dead letters instead.

Several recordings are merged by receive time, so two venues recorded over the same minutes
replay as they happened.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from connectors.replay import binance_hft, cryptofeed_recording
from models.events import AnyMarketEvent, DeadLetter

# Any file of a cryptofeed raw recording: `NAME.ws.N.M` sessions, `NAME.http.N.M` REST calls,
# `NAME.0` start-up (or, from the recorder of early 2021, `NAME-1a2b3c.0` holding everything).
_CRYPTOFEED_WS_FILE = re.compile(
    r"^(?P<prefix>(?P<exchange>[A-Z0-9_.]+?)(-[0-9a-f]+)?)(\.(ws|http)\.\d+\.\d+|\.0)$"
)
# cryptofeed 3's recordings (`NAME.meta.json` with `NAME.pcap.zst` or `NAME.jsonl.zst`): a
# capture format the 2.4 feeds cannot be fed from; named, not guessed as a Binance file.
_CRYPTOFEED_3_FILE = re.compile(r"^[A-Z0-9_.]+?(-[0-9a-f]+)?\.(meta\.json|pcap\.zst|jsonl\.zst)$")


_COUNTS = ("read", "produced", "ignored", "failed", "events")


class RecordingError(ValueError):
    """A recording that cannot be replayed; the message is one line and names it."""

ReplayEvent = AnyMarketEvent | DeadLetter


class Recordings:
    """Recorded files opened for replay; `stats()` accounts for every line read so far."""

    def __init__(self, paths: Sequence[str | Path]):
        self._hft_stats = binance_hft.ReplayStats()
        self._hft_paths: list[Path] = []
        # (directory, prefix) -> exchange: two recordings of one name in two folders are two
        # recordings, both replayed.
        self._cryptofeed: dict[tuple[Path, str], str] = {}
        self._unreadable: list[Path] = []
        for path in map(Path, paths):
            match = _CRYPTOFEED_WS_FILE.match(path.name)
            if _CRYPTOFEED_3_FILE.match(path.name):
                self._unreadable.append(path)
            elif match:
                self._cryptofeed.setdefault((path.parent, match["prefix"]), match["exchange"])
            else:
                self._hft_paths.append(path)
        self._replays: list[cryptofeed_recording.RecordingReplay] = []

    def events(self) -> Iterator[ReplayEvent]:
        if self._unreadable:
            raise RecordingError(
                f"{self._unreadable[0]}: a cryptofeed 3 recording (meta.json with pcap.zst or "
                "jsonl.zst), which this replay does not read; it reads cryptofeed 2.x raw "
                "recordings (NAME.0 with NAME.ws.N.M and NAME.http.N.M)"
            )
        streams: list[Iterable[ReplayEvent]] = [
            binance_hft.iter_events(path, stats=self._hft_stats) for path in self._hft_paths
        ]
        for (directory, prefix), exchange in self._cryptofeed.items():
            try:
                replay = cryptofeed_recording.iter_recording(directory, exchange, prefix=prefix)
            except (ValueError, OSError) as exc:
                raise RecordingError(f"{directory / prefix}: {exc}") from None
            self._replays.append(replay)
            streams.append(_failing_as_recording_error(replay, directory / prefix))
        if len(streams) == 1:
            return iter(streams[0])
        return (event for _, event in heapq.merge(*map(_keyed, streams), key=_first))

    def source_files(self) -> list[Path]:
        """Every file a replay reads, in a stable order (a cryptofeed recording is its
        start-up, snapshot and websocket files): what a cache of its events depends on."""
        files = list(self._hft_paths)
        for directory, prefix in self._cryptofeed:
            files += sorted(directory.glob(f"{prefix}.*"))
        return files

    def stats(self) -> dict:
        stats = self._hft_stats.as_dict() if self._hft_paths else {}
        for replay in self._replays:  # summed per exchange: one may have several recordings
            s = replay.stats
            counts = stats.setdefault(s.exchange, dict.fromkeys(_COUNTS, 0))
            for name in _COUNTS:
                counts[name] += getattr(s, name)
        return stats


def _failing_as_recording_error(
    replay: Iterable[ReplayEvent], name: Path
) -> Iterator[ReplayEvent]:
    # A feed that cannot subscribe from the recording fails at its first event.
    try:
        yield from replay
    except (ValueError, OSError) as exc:
        raise RecordingError(f"{name}: {exc}") from None


def _keyed(events: Iterable[ReplayEvent]) -> Iterator[tuple[int, ReplayEvent]]:
    # A dead letter without a receive time keeps its place after its stream's previous event.
    last = 0
    for event in events:
        if event.receive_ts is not None:
            last = event.receive_ts
        yield last, event


def _first(item: tuple[int, ReplayEvent]) -> int:
    return item[0]
