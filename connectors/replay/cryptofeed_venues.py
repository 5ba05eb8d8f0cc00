"""The exchanges whose cryptofeed recordings can be replayed, and what differs between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptofeed.defines import BINANCE, BITSTAMP, COINBASE, GEMINI, KRAKEN, OKX

from connectors.replay.coinbase_pro import CoinbasePro


class RecordingAdapter(Protocol):
    """Bridges a recording made against an older exchange API to the installed cryptofeed."""

    def feed_config(self) -> dict: ...

    def rest(self, url: str, body: str) -> tuple[str, str]: ...

    def message(self, text: str) -> str: ...


class AsRecorded:
    """For recordings the installed cryptofeed reads unchanged."""

    def feed_config(self) -> dict:
        # Explicitly empty: a CRYPTOFEED_CONFIG file in the environment must not alter replay.
        return {}

    def rest(self, url: str, body: str) -> tuple[str, str]:
        return url, body

    def message(self, text: str) -> str:
        return text


@dataclass(frozen=True, slots=True)
class Venue:
    """`ticker_sizes`: where the best bid/ask sizes sit in the raw ticker cryptofeed keeps,
    since its Ticker carries prices only. None where no recording shows them: such a venue's
    tickers become dead letters rather than BBOs with made-up sizes."""

    ccxt_id: str
    cryptofeed_id: str
    ticker_sizes: tuple[str, str] | None = None
    adapter: RecordingAdapter = field(default_factory=AsRecorded)


VENUES: dict[str, Venue] = {
    v.ccxt_id: v
    for v in (
        Venue("binance", BINANCE, ticker_sizes=("B", "A")),
        Venue("coinbase", COINBASE, adapter=CoinbasePro()),
        Venue("kraken", KRAKEN),
        Venue("bitstamp", BITSTAMP),
        Venue("okx", OKX, ticker_sizes=("bidSz", "askSz")),
        Venue("gemini", GEMINI),
    )
}

SUPPORTED_EXCHANGES: tuple[str, ...] = tuple(VENUES)


def venue_for(exchange: str) -> Venue:
    """By ccxt id; cryptofeed's upper-case id (the recording's file prefix) works too."""
    try:
        return VENUES[exchange.lower()]
    except (KeyError, AttributeError):
        supported = ", ".join(SUPPORTED_EXCHANGES)
        raise ValueError(
            f"no cryptofeed replay for exchange {exchange!r}; supported: {supported}"
        ) from None
