"""Symbols named as cryptofeed named them before 2.0, read as cryptofeed 2.4 names them.

A raw recording's `configuration:` line holds cryptofeed's normalized symbols of the version
that recorded it. cryptofeed 2.0 renamed derivatives: perpetuals gained a `-PERP` suffix
(`DOGE-USDT` on BitMEX or Binance USD-M is `DOGE-USDT-PERP`) and futures expiries went from
month letter and year (`EOS-BTC-M21`) to year, month letter and day (`EOS-BTC-21M25`); Binance
COIN-M's contracts carried the exchange's suffix after `_` (`BTC-USD_PERP`, `ETH-USD_210625`,
now `BTC-USD-PERP`, `ETH-USD-21M25`). Some feeds renamed currencies too: HitBTC's and
Bequant's `USD` (Tether, in the exchange's own words) became `USDT` (`MANA-USD` is
`MANA-USDT`); such a name is read through the exchange's own spelling of the instrument
(`MANAUSD`), which did not change. The
websocket traffic names instruments by the exchange's own symbols, which did not change, so a
recording whose configuration is read this way replays as one made by 2.4.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from contextlib import suppress

from connectors.replay.cryptofeed_events import expiry_code, letters

__all__ = ["current_symbol"]

_OLD_EXPIRY = re.compile(r"([FGHJKMNQUVXZ])(\d{2})")
_NEW_EXPIRY = re.compile(r"(\d{2})([FGHJKMNQUVXZ])\d{1,2}")


def current_symbol(symbol: str, known: Collection[str] | Mapping[str, str]) -> str:
    """`symbol` as cryptofeed 2.4 names it among `known` (its feed's normalized symbols, or its
    symbol table, normalized to the exchange's spelling): itself when known, else the one
    instrument its pre-2.0 name can mean; unchanged when none or several can (the feed then
    refuses it by name)."""
    if symbol in known:
        return symbol
    pair, underscore, suffix = symbol.partition("_")
    if underscore:
        with suppress(ValueError):  # PERP stays as it is
            suffix = expiry_code(suffix)
        current = current_symbol(f"{pair}-{suffix}", known)
        return current if current in known else symbol
    candidates = [symbol + "-PERP"] if symbol + "-PERP" in known else []
    parts = symbol.split("-")
    old = _OLD_EXPIRY.fullmatch(parts[-1]) if len(parts) == 3 else None
    if old:
        month, year = old.groups()
        prefix = f"{parts[0]}-{parts[1]}-"
        candidates += [
            k for k in known
            if k.startswith(prefix) and (new := _NEW_EXPIRY.fullmatch(k[len(prefix):]))
            and new.groups() == (year, month)
        ]
    if not candidates and isinstance(known, Mapping):
        spelled = letters(symbol)
        candidates = [k for k, exchange in known.items() if letters(str(exchange)) == spelled]
    return candidates[0] if len(candidates) == 1 else symbol
