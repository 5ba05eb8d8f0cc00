"""Short recordings for quick tests: the first lines of a shared gzip recording written as a
file of the same format (in a temp dir; the shared data is never copied into the repo)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from itertools import islice
from pathlib import Path


def slice_recording(
    source: Path, target: Path, lines: int, extra: bytes = b"",
    keep: Callable[[bytes], bool] | None = None,
) -> Path:
    """`source`'s first `lines` lines (those `keep` is true of), then `extra` (e.g. damaged
    lines), gzipped at `target`."""
    with gzip.open(source, "rb") as raw, gzip.open(target, "wb") as out:
        out.writelines(filter(keep, islice(raw, lines)))
        out.write(extra)
    return target


def without_book_ticker(line: bytes) -> bool:
    """`keep` for a Binance recording without its bookTicker stream: the same span of market
    time in a quarter of the events (quoted and matched on the L2 touch alone)."""
    return b"@bookTicker" not in line
