"""Short recordings for quick tests: the first lines of a shared gzip recording written as a
file of the same format (in a temp dir; the shared data is never copied into the repo)."""

from __future__ import annotations

import gzip
from itertools import islice
from pathlib import Path


def slice_recording(source: Path, target: Path, lines: int, extra: bytes = b"") -> Path:
    """`source`'s first `lines` lines, then `extra` (e.g. damaged lines), gzipped at `target`."""
    with gzip.open(source, "rb") as raw, gzip.open(target, "wb") as out:
        out.writelines(islice(raw, lines))
        out.write(extra)
    return target
