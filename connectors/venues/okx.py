"""OKX: its tickers carry the best sizes (`bidSz`/`askSz`)."""

from __future__ import annotations

from cryptofeed.defines import OKX

from connectors.venues.descriptor import SelfTradePrevention, Venue

VENUES = (
    Venue(name="okx", cryptofeed_id=OKX, ccxt_id="okx", ticker_sizes=("bidSz", "askSz"),
          self_trade_prevention=SelfTradePrevention(
              "stpMode", taker="cancel_taker", maker="cancel_maker", both="cancel_both")),
)
