"""Bybit: its linear tickers carry the best sizes (`bid1Size`/`ask1Size`; cryptofeed subscribes
tickers on the linear endpoint only)."""

from __future__ import annotations

from cryptofeed.defines import BYBIT

from connectors.venues.descriptor import SelfTradePrevention, Venue

VENUES = (
    Venue(name="bybit", cryptofeed_id=BYBIT, ccxt_id="bybit",
          ticker_sizes=("bid1Size", "ask1Size"),
          self_trade_prevention=SelfTradePrevention(
              "smpType", taker="CancelTaker", maker="CancelMaker", both="CancelBoth")),
)
