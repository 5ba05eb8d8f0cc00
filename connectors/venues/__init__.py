"""Every exchange quoteflow can read, as data: one `Venue` descriptor per exchange.

The registry starts from cryptofeed's EXCHANGE_MAP, so every exchange cryptofeed supports
replays from its raw recordings and runs live with no code of its own; the few modules beside
this one (binance, bitfinex, bitflyer, bithumb, bybit, coinbase, fmfw, kraken, kucoin, okx) state
only what cannot be derived; `former_names` names exchanges cryptofeed knows only by a later
name (BitMax, now AscendEX; Bitcoin.com, a HitBTC white label) so that their old recordings
replay through the feed that speaks their API.
Look a venue up by quoteflow's name (ccxt's id) or by cryptofeed's id, as recordings are named.
"""

from __future__ import annotations

from cryptofeed.defines import L2_BOOK, TICKER, TRADES
from cryptofeed.exchanges import EXCHANGE_MAP

from connectors.venues import (
    binance,
    bitfinex,
    bitflyer,
    bithumb,
    bybit,
    coinbase,
    fmfw,
    former_names,
    kraken,
    kucoin,
    okx,
)
from connectors.venues.descriptor import (
    BINANCE_HFT,
    CRYPTOFEED,
    AsRecorded,
    RecordingAdapter,
    SelfTradePrevention,
    Venue,
    check_stp_mode,
)
from models.sequencing import SequencingRule, rule_named

__all__ = [
    "BINANCE_HFT",
    "CRYPTOFEED",
    "FORMER_NAMES",
    "VENUES",
    "AsRecorded",
    "RecordingAdapter",
    "SelfTradePrevention",
    "UnknownVenueError",
    "Venue",
    "derived_venue",
    "order_params",
    "sequencing_rule",
    "venue_for",
]


class UnknownVenueError(ValueError):
    """No descriptor for that exchange name; the message lists the known ones."""


def derived_venue(cryptofeed_id: str) -> Venue:
    """The descriptor of a cryptofeed exchange with no module of its own."""
    name = cryptofeed_id.lower().replace("_", "").replace(".", "")
    return Venue(name=name, cryptofeed_id=cryptofeed_id, ccxt_id=name,
                 needs_keys=signs_market_data(cryptofeed_id))


def signs_market_data(cryptofeed_id: str) -> bool:
    """Whether cryptofeed treats a channel quoteflow consumes as authenticated (KuCoin's
    L2 book): its feed cannot even be built without an API key."""
    feed_class = EXCHANGE_MAP[cryptofeed_id]
    return any(feed_class.is_authenticated_channel(c) for c in (L2_BOOK, TRADES, TICKER))


def _registry() -> dict[str, Venue]:
    venues = {v.cryptofeed_id: v for v in map(derived_venue, EXCHANGE_MAP)}
    specific = [
        *binance.VENUES, *bitfinex.VENUES, *bitflyer.VENUES, *bithumb.VENUES, *bybit.VENUES,
        *coinbase.VENUES, *fmfw.VENUES, *kucoin.VENUES, *okx.VENUES, *kraken.VENUES,
    ]
    for venue in specific:
        if venue.cryptofeed_id is not None:
            venues.pop(venue.cryptofeed_id, None)
    by_name = {v.name: v for v in venues.values()}
    by_name.update((v.name, v) for v in specific)
    # Former names: looked up by name (their recordings' prefix), never by cryptofeed's id.
    by_name.update((v.name, v) for v in _FORMER_NAMES)
    return dict(sorted(by_name.items()))


_FORMER_NAMES = former_names.VENUES
VENUES: dict[str, Venue] = _registry()
_BY_CRYPTOFEED_ID = {
    v.cryptofeed_id: v for v in VENUES.values() if v.cryptofeed_id and v not in _FORMER_NAMES
}
# Venues named as an exchange was before cryptofeed renamed it; their recordings carry that name.
FORMER_NAMES = frozenset(v.name for v in _FORMER_NAMES)


def venue_for(exchange: str) -> Venue:
    """By quoteflow's name (ccxt's id) or cryptofeed's id (a recording's file prefix),
    case-insensitively; UnknownVenueError names the known ones."""
    if isinstance(exchange, str):
        venue = VENUES.get(exchange.lower()) or _BY_CRYPTOFEED_ID.get(exchange.upper())
        if venue is not None:
            return venue
    raise UnknownVenueError(f"unknown exchange {exchange!r}; known: {', '.join(VENUES)}")


def order_params(exchange: str, stp_mode: str) -> dict[str, str]:
    """The ccxt `params` every order on the exchange carries for the self-trade prevention
    mode (`connectors.venues.descriptor.STP_MODES`); none for an exchange without a known
    per-order mode, whose orders rely on quoteflow's own pre-trade check alone."""
    try:
        venue = venue_for(exchange)
    except UnknownVenueError:
        check_stp_mode(stp_mode)
        return {}
    return venue.order_params(stp_mode)


def sequencing_rule(venue: str) -> SequencingRule:
    """The book-sequencing rule the venue's descriptor names ("arrival" for unknown names:
    feeds without update ids)."""
    try:
        return rule_named(venue_for(venue).sequencing)
    except UnknownVenueError:
        return rule_named("arrival")
