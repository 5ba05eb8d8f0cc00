"""KuCoin: cryptofeed 2.4 fetches its book snapshots from a signed endpoint (an API key is
needed live), and its tickers carry the best sizes (`data.bestBidSize`/`data.bestAskSize`)."""

from __future__ import annotations

from cryptofeed.defines import KUCOIN

from connectors.venues.descriptor import SelfTradePrevention, Venue

VENUES = (
    Venue(name="kucoin", cryptofeed_id=KUCOIN, ccxt_id="kucoin", needs_keys=True,
          ticker_sizes=("data.bestBidSize", "data.bestAskSize"),
          # CN: cancel newest (the taker), CO: cancel oldest (the maker), CB: both.
          self_trade_prevention=SelfTradePrevention("stp", taker="CN", maker="CO", both="CB")),
)
