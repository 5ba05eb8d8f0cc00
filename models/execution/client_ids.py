"""Deterministic client order ids: the same intent, side and level always give the same id.

That is what makes a retry or a replayed intent harmless: the executor asks the venue for the
id before sending it again, and venues refuse a second open order with an id they hold.

The id is a prefix and 24 hex digits of a BLAKE2b digest: 26 characters of `[a-z0-9]`, inside
what Binance (36, `[.A-Z:/a-z0-9_-]`), OKX (32, alphanumeric) and Bybit (36) accept. 96 bits
make a collision between two different (intent, side, level) triples negligible.
"""

from __future__ import annotations

import hashlib

from models.events import Side

DEFAULT_PREFIX = "qf"
_DIGEST_BYTES = 12


def client_order_id(intent_id: str, side: Side, level: int, prefix: str = DEFAULT_PREFIX) -> str:
    if not prefix.isalnum() or not prefix.isascii():
        raise ValueError(f"prefix {prefix!r} must be ASCII letters and digits")
    digest = hashlib.blake2b(
        f"{intent_id}\x1f{side}\x1f{level}".encode(), digest_size=_DIGEST_BYTES
    ).hexdigest()
    return prefix + digest
