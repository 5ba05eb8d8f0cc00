"""Trading rules per venue from ccxt's market structures, cached as files for offline use.

`connectors/venues/markets/<venue>.json` holds, per unified symbol, the fields of ccxt's market
structure (`exchange.markets[symbol]` after `load_markets()`) that an `Instrument` needs: tick
and step (`precision`, in the exchange's `precisionMode`), minimum amount and cost (`limits`),
`contractSize`, `linear`/`inverse`, `settle`, `maker`/`taker`. Tests, replays and backtests
read only these files; `refresh_markets` (`quoteflow markets refresh`) rewrites them from the
live exchange. `order_sizes` in a file is quoteflow's own default quote size per symbol,
kept across refreshes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path

from models.instrument import (
    CCXT_TICK_SIZE,
    Instrument,
    InstrumentRuleError,
    instrument_from_market,
)

MARKETS_DIR = Path(__file__).parent / "markets"

# What an Instrument needs of a ccxt market; `info` (the raw exchange answer) is left out.
_MARKET_KEYS = (
    "id", "symbol", "base", "quote", "settle", "type", "spot", "margin", "swap", "future",
    "option", "contract", "linear", "inverse", "contractSize", "expiry", "precision", "limits",
    "maker", "taker", "active",
)


class MarketsError(ValueError):
    """A venue's market cache is missing or unreadable, or the exchange cannot be reached."""


class UnknownInstrumentError(KeyError):
    """No trading rules for that instrument in the cache (a KeyError, as a mapping miss)."""

    def __str__(self) -> str:
        return str(self.args[0])


def cached_venues(directory: Path = MARKETS_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.json"))


@cache
def _load(venue: str, directory: Path) -> dict:
    path = directory / f"{venue}.json"
    try:
        with path.open(encoding="utf-8") as file:
            cached = json.load(file, parse_float=Decimal)
        markets = cached["markets"]
        if not isinstance(markets, dict):
            raise ValueError("'markets' is not an object")
    except FileNotFoundError:
        raise MarketsError(
            f"no market cache for venue {venue!r} ({path}); run `quoteflow markets refresh "
            f"--exchange {venue}` where the exchange is reachable"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MarketsError(f"unreadable market cache {path}: {exc}") from None
    return cached


def instruments(venue: str, directory: Path = MARKETS_DIR) -> dict[str, Instrument]:
    """Every cached instrument of `venue`, by unified symbol."""
    cached = _load(venue, directory)
    mode = int(cached.get("precisionMode", CCXT_TICK_SIZE))
    sizes = cached.get("order_sizes") or {}
    try:
        return {
            symbol: instrument_from_market(
                venue, market, precision_mode=mode,
                default_order_size=Decimal(sizes[symbol]) if symbol in sizes else None,
            )
            for symbol, market in cached["markets"].items()
        }
    except InstrumentRuleError as exc:
        raise MarketsError(f"market cache of {venue}: {exc}") from None


def instrument_for(venue: str, symbol: str, directory: Path = MARKETS_DIR) -> Instrument:
    """The instrument's rules from the cache; UnknownInstrumentError says what is known."""
    try:
        by_symbol = instruments(venue, directory)
    except MarketsError as exc:
        raise UnknownInstrumentError(f"no trading rules for {venue}:{symbol}: {exc}") from None
    try:
        return by_symbol[symbol]
    except KeyError:
        known = ", ".join(f"{venue}:{s}" for s in sorted(by_symbol))
        raise UnknownInstrumentError(
            f"no trading rules for {venue}:{symbol}; cached: {known}"
        ) from None


def all_instruments(directory: Path = MARKETS_DIR) -> dict[str, Instrument]:
    """Every cached instrument by `venue:symbol` key."""
    return {
        instrument.key: instrument
        for venue in cached_venues(directory)
        for instrument in instruments(venue, directory).values()
    }


def market_entry(market: Mapping) -> dict:
    """The cached part of one ccxt market structure."""
    return {key: market[key] for key in _MARKET_KEYS if market.get(key) is not None}


def write_cache(
    venue: str,
    exchange_id: str,
    precision_mode: int,
    markets: Mapping[str, Mapping],
    source: str,
    directory: Path = MARKETS_DIR,
) -> Path:
    """(Re)write `venue`'s cache from ccxt markets, keeping its `order_sizes`."""
    path = directory / f"{venue}.json"
    try:
        order_sizes = _load(venue, directory).get("order_sizes") or {}
    except MarketsError:
        order_sizes = {}
    document = {
        "exchange": exchange_id,
        "source": source,
        "precisionMode": precision_mode,
        "order_sizes": order_sizes,
        "markets": {symbol: market_entry(m) for symbol, m in sorted(markets.items())},
    }
    directory.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=1, default=_number) + "\n", encoding="utf-8")
    temporary.replace(path)
    _load.cache_clear()
    return path


def _number(value):
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    raise TypeError(f"cannot cache {type(value).__name__}")


def refresh_markets(
    venues: Iterable[str],
    *,
    config: Mapping | None = None,
    directory: Path = MARKETS_DIR,
) -> list[Path]:
    """Fetch each venue's markets with ccxt's `load_markets()` and rewrite its cache.

    `config` goes to the ccxt exchange (e.g. `urls`, `options`; tests point it at a stand-in).
    Raises MarketsError (one line) for a venue ccxt has no class for or cannot reach.
    """
    import ccxt  # only here: a second to import, and only a refresh needs it

    from connectors.venues import venue_for

    written = []
    for name in venues:
        venue = venue_for(name)
        exchange_class = getattr(ccxt, venue.ccxt_id or "", None)
        if exchange_class is None:
            raise MarketsError(f"{venue.name}: ccxt has no exchange {venue.ccxt_id!r}")
        exchange = exchange_class({"timeout": 15_000, **(config or {})})
        try:
            markets = exchange.load_markets()
        except Exception as exc:
            raise MarketsError(
                f"{venue.name}: cannot load markets from the exchange ({type(exc).__name__}: "
                f"{_first_line(exc)})"
            ) from None
        written.append(write_cache(
            venue.name, venue.ccxt_id, int(exchange.precisionMode), markets,
            f"ccxt {ccxt.__version__} load_markets()", directory,
        ))
    return written


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no detail"
