"""Kraken (spot): its orders take the exchange's self-trade prevention (`stptype`)."""

from __future__ import annotations

from cryptofeed.defines import KRAKEN

from connectors.venues.descriptor import SelfTradePrevention, Venue

VENUES = (
    Venue(name="kraken", cryptofeed_id=KRAKEN, ccxt_id="kraken",
          self_trade_prevention=SelfTradePrevention(
              "stptype", taker="cancel-newest", maker="cancel-oldest", both="cancel-both")),
)
