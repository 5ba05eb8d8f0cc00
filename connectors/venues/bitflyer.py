"""bitFlyer: its tickers carry the best sizes, inside the JSON-RPC envelope cryptofeed keeps."""

from __future__ import annotations

from cryptofeed.defines import BITFLYER

from connectors.venues.descriptor import Venue

VENUES = (
    Venue(name="bitflyer", cryptofeed_id=BITFLYER, ccxt_id="bitflyer",
          ticker_sizes=("params.message.best_bid_size", "params.message.best_ask_size")),
)
