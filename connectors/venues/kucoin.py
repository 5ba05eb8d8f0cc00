"""KuCoin: cryptofeed 2.4 fetches its book snapshots from a signed endpoint (an API key is
needed live), and its tickers carry the best sizes (`data.bestBidSize`/`data.bestAskSize`).

Recordings made by cryptofeed 1.x (cryptofeed's own sample data of 2021) fetched the snapshots
from `/api/v2/market/orderbook/level2`, since retired for `/api/v3/...` with the same body
(`{"code", "data": {"time", "sequence", "bids", "asks"}}`): the adapter files them under the
v3 address cryptofeed 2.4 asks, so its own sequencing runs on them unchanged.
"""

from __future__ import annotations

from cryptofeed.defines import KUCOIN
from cryptofeed.exchanges import KuCoin

from connectors.venues.descriptor import AsRecorded, SelfTradePrevention, Venue

_V2_SNAPSHOT = "https://api.kucoin.com/api/v2/market/orderbook/level2?"
_V3_SNAPSHOT = KuCoin.rest_endpoints[0].route("l2book").partition("?")[0] + "?"


class KucoinV2Snapshots(AsRecorded):
    def rest(self, url: str, body: str) -> tuple[str, str]:
        if url.startswith(_V2_SNAPSHOT):
            return _V3_SNAPSHOT + url[len(_V2_SNAPSHOT):], body
        return url, body


VENUES = (
    Venue(name="kucoin", cryptofeed_id=KUCOIN, ccxt_id="kucoin", needs_keys=True,
          ticker_sizes=("data.bestBidSize", "data.bestAskSize"), adapter=KucoinV2Snapshots(),
          # CN: cancel newest (the taker), CO: cancel oldest (the maker), CB: both.
          self_trade_prevention=SelfTradePrevention("stp", taker="CN", maker="CO", both="CB")),
)
