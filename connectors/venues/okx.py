"""OKX: its tickers carry the best sizes (`bidSz`/`askSz`)."""

from __future__ import annotations

from cryptofeed.defines import OKX

from connectors.venues.descriptor import Venue

VENUES = (Venue(name="okx", cryptofeed_id=OKX, ccxt_id="okx", ticker_sizes=("bidSz", "askSz")),)
