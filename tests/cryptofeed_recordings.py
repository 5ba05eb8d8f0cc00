"""Constructed cryptofeed raw-data recordings, for exchanges /work/shared/data has none of.

`RecordingWriter` writes the files cryptofeed's recorder (`AsyncFileCallback`) writes:
`NAME.0` (configuration and start-up REST calls), `NAME.http.0.0` (REST calls while running),
`NAME.ws.N.0` (one websocket session each). `MarketWalk` makes a book that moves a tick at a
time and never crosses, with trades at the touch: the messages each exchange module builds from
it follow that exchange's documented websocket format, so cryptofeed's own parser reads them as
it reads live traffic. The data are constructed samples, not recordings of a real market.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path


def _ts(seconds: Decimal) -> str:
    return f"{seconds:.6f}"


class RecordingWriter:
    def __init__(self, directory: Path, name: str, configuration: dict, start: Decimal) -> None:
        self.directory = directory
        self.name = name
        self.now = start
        self._startup = [f"configuration: {json.dumps(configuration)}"]
        self._http: list[str] = []
        self._sessions: dict[int, list[str]] = {}

    def tick(self, seconds: str = "0.05") -> str:
        self.now += Decimal(seconds)
        return _ts(self.now)

    def startup_rest(self, url: str, body) -> None:
        self._startup.append(f"{url} -> {self.tick()}: {_text(body)}")

    def rest(self, url: str, body) -> None:
        self._http.append(f"{url} -> {self.tick()}: {_text(body)}")

    def connect(self, session: int, address: str) -> None:
        self._sessions[session] = [f"{address} <-> {self.tick()}"]
        self._address = address
        self._session = session

    def sent(self, message) -> None:
        self._sessions[self._session].append(f"{self._address} <- {self.tick()}: {_text(message)}")

    def received(self, message) -> None:
        self._sessions[self._session].append(f"{self.tick()}: {_text(message)}")

    def close(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{self.name}.0").write_text("\n".join(self._startup) + "\n")
        if self._http:
            (self.directory / f"{self.name}.http.0.0").write_text("\n".join(self._http) + "\n")
        for session, lines in self._sessions.items():
            path = self.directory / f"{self.name}.ws.{session}.0"
            path.write_text("\n".join(lines) + "\n")
        return self.directory


def _text(body) -> str:
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


@dataclass
class MarketWalk:
    """A book of `depth` levels a side around a mid that moves a tick per step."""

    mid: Decimal
    tick: Decimal
    depth: int = 5
    seed: int = 7
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.bids, self.asks = self._levels()

    def _size(self) -> Decimal:
        return Decimal(self._random.randint(1, 5000)) / 1000

    def _levels(self) -> tuple[dict, dict]:
        bids = {self.mid - self.tick * k: self._size() for k in range(1, self.depth + 1)}
        asks = {self.mid + self.tick * k: self._size() for k in range(1, self.depth + 1)}
        return bids, asks

    def step(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Move the mid; the (price, size) changes per side, size 0 removing a level."""
        self.mid += self.tick * self._random.choice((-1, 1))
        bids, asks = self._levels()
        changes = []
        for old, new in ((self.bids, bids), (self.asks, asks)):
            changed = [(p, s) for p, s in new.items()]
            changed += [(p, Decimal(0)) for p in old if p not in new]
            changes.append(sorted(changed))
        self.bids, self.asks = bids, asks
        return changes[0], changes[1]

    def touch(self) -> tuple[tuple[Decimal, Decimal], tuple[Decimal, Decimal]]:
        bid = max(self.bids)
        ask = min(self.asks)
        return (bid, self.bids[bid]), (ask, self.asks[ask])


def strings(levels) -> list[list[str]]:
    return [[str(price), str(size)] for price, size in levels]
