"""One entry point for every recording format quoteflow replays.

- hftbacktest's Binance files (`<ns> <json>` lines, usually gzip): `binance_hft`;
- cryptofeed's raw-data recordings, named by their websocket file (`KRAKEN.ws.50.0`; the
  start-up and snapshot files beside it are found from it): `cryptofeed_recording`.

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

_CRYPTOFEED_WS_FILE = re.compile(r"^(?P<exchange>[A-Z_]+)\.ws\.\d+\.\d+$")

ReplayEvent = AnyMarketEvent | DeadLetter


class Recordings:
    """Recorded files opened for replay; `stats()` accounts for every line read so far."""

    def __init__(self, paths: Sequence[str | Path]):
        self._hft_stats = binance_hft.ReplayStats()
        self._hft_paths: list[Path] = []
        self._cryptofeed: dict[str, Path] = {}
        for path in map(Path, paths):
            match = _CRYPTOFEED_WS_FILE.match(path.name)
            if match:
                self._cryptofeed.setdefault(match["exchange"].lower(), path.parent)
            else:
                self._hft_paths.append(path)
        self._replays: list[cryptofeed_recording.RecordingReplay] = []

    def events(self) -> Iterator[ReplayEvent]:
        streams: list[Iterable[ReplayEvent]] = [
            binance_hft.iter_events(path, stats=self._hft_stats) for path in self._hft_paths
        ]
        for exchange, directory in self._cryptofeed.items():
            replay = cryptofeed_recording.iter_recording(directory, exchange)
            self._replays.append(replay)
            streams.append(replay)
        if len(streams) == 1:
            return iter(streams[0])
        return (event for _, event in heapq.merge(*map(_keyed, streams), key=_first))

    def stats(self) -> dict:
        stats = self._hft_stats.as_dict() if self._hft_paths else {}
        for replay in self._replays:
            s = replay.stats
            stats[s.exchange] = {
                "read": s.read, "produced": s.produced, "ignored": s.ignored,
                "failed": s.failed, "events": s.events,
            }
        return stats


def _keyed(events: Iterable[ReplayEvent]) -> Iterator[tuple[int, ReplayEvent]]:
    # A dead letter without a receive time keeps its place after its stream's previous event.
    last = 0
    for event in events:
        if event.receive_ts is not None:
            last = event.receive_ts
        yield last, event


def _first(item: tuple[int, ReplayEvent]) -> int:
    return item[0]
