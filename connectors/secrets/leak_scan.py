"""Search files, directories and byte strings for a canary secret in its usual disguises.

The end-to-end leak test plants a canary key, runs the system, and scans logs, data
directories, topic dumps, database exports and API responses. A secret seldom leaks as
itself only: loggers and serializers base64-, hex- or URL-encode it, or escape it inside
JSON. Each form is searched for, and gzip files are searched decompressed too.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import urllib.parse
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_MIN_CANARY = 8  # shorter canaries match by chance
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class LeakHit:
    """Where a form of the canary was found: a file path or the label of a byte string."""

    where: str
    form: str
    offset: int


def canary_forms(canary: str) -> dict[str, bytes]:
    """The byte patterns a leaked `canary` may take, by name.

    Base64 is searched in all three alignments (the canary may sit anywhere in a longer
    encoded string) with the partial edge characters trimmed.
    """
    if len(canary) < _MIN_CANARY:
        raise ValueError(f"a canary must be at least {_MIN_CANARY} characters to scan for")
    raw = canary.encode()
    forms = {
        "plain": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "url": urllib.parse.quote(canary, safe="").encode(),
        "url+": urllib.parse.quote_plus(canary).encode(),
        "json": json.dumps(canary)[1:-1].encode(),
        "utf-16-le": canary.encode("utf-16-le"),
    }
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\x00" * shift + raw)
            # Keep only the characters whose 6 bits all come from the canary: the others
            # also depend on the unknown bytes around it.
            start = -(-8 * shift // 6)
            end = 8 * (shift + len(raw)) // 6
            forms[f"{name}@{shift}"] = encoded[start:end]
    # Identical patterns (e.g. a canary with nothing to escape) are searched once.
    unique: dict[bytes, str] = {}
    for name, pattern in forms.items():
        unique.setdefault(pattern, name)
    return {name: pattern for pattern, name in unique.items()}


def scan_bytes(data: bytes, canary: str, where: str = "<bytes>") -> list[LeakHit]:
    return _scan(data, canary_forms(canary), where)


def scan_paths(paths: Iterable[str | os.PathLike[str]], canary: str) -> list[LeakHit]:
    """Every hit in the given files and, recursively, directories (symlinks not followed)."""
    forms = canary_forms(canary)
    hits: list[LeakHit] = []
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.is_symlink():
                hits.extend(_scan_file(file, forms))
    return hits


def _scan(data: bytes, forms: dict[str, bytes], where: str) -> list[LeakHit]:
    hits = []
    for name, pattern in forms.items():
        offset = data.find(pattern)
        if offset >= 0:
            hits.append(LeakHit(where, name, offset))
    return hits


def _scan_file(file: Path, forms: dict[str, bytes]) -> list[LeakHit]:
    with file.open("rb") as stream:
        hits = _scan_stream(stream, forms, str(file))
    if file.suffix == ".gz":
        # A truncated or fake .gz was still scanned raw above; keep what it yielded.
        decompressed: list[LeakHit] = []
        with contextlib.suppress(OSError, EOFError, zlib.error), gzip.open(file, "rb") as stream:
            _scan_stream(stream, forms, f"{file} (decompressed)", into=decompressed)
        hits += decompressed
    return hits


def _scan_stream(
    stream: io.BufferedIOBase,
    forms: dict[str, bytes],
    where: str,
    into: list[LeakHit] | None = None,
) -> list[LeakHit]:
    """Chunked search; chunks overlap by the longest pattern so nothing straddles unseen."""
    overlap = max(map(len, forms.values())) - 1
    hits = [] if into is None else into
    seen: set[str] = set()
    base = 0  # stream offset of `window[0]`
    window = b""
    # read1: a truncated gzip stream yields what it decoded before failing, not nothing.
    while chunk := stream.read1(_CHUNK):
        window += chunk
        for hit in _scan(window, forms, where):
            if hit.form not in seen:
                seen.add(hit.form)
                hits.append(LeakHit(where, hit.form, base + hit.offset))
        keep = min(overlap, len(window))
        base += len(window) - keep
        window = window[len(window) - keep :]
    return hits
