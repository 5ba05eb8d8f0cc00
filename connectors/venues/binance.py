"""Binance: spot, USD-M (linear) and COIN-M (inverse) futures.

Quirks: cryptofeed's bookTicker keeps the best sizes as `B`/`A`; hftbacktest's recordings carry
the update ids (`U`, `u`, and `pu` on futures) that Binance's local-book rules check; spot and
futures follow different rules.
"""

from __future__ import annotations

from cryptofeed.defines import BINANCE, BINANCE_DELIVERY, BINANCE_FUTURES

from connectors.venues.descriptor import BINANCE_HFT, CRYPTOFEED, SelfTradePrevention, Venue

# Spot, USD-M and COIN-M orders all take `selfTradePreventionMode`.
_STP = SelfTradePrevention("selfTradePreventionMode", taker="EXPIRE_TAKER",
                           maker="EXPIRE_MAKER", both="EXPIRE_BOTH")
_FEES = "ccxt load_markets: VIP 0 (spot 0.1%/0.1%, USD-M 0.02%/0.05%, COIN-M 0.01%/0.05%)"

VENUES = (
    Venue(
        name="binance", cryptofeed_id=BINANCE, ccxt_id="binance", sequencing="binance-spot",
        fee_source=_FEES, ticker_sizes=("B", "A"), recordings=(CRYPTOFEED, BINANCE_HFT),
        self_trade_prevention=_STP,
    ),
    Venue(
        name="binanceusdm", cryptofeed_id=BINANCE_FUTURES, ccxt_id="binanceusdm",
        sequencing="binance-futures", fee_source=_FEES, ticker_sizes=("B", "A"),
        recordings=(CRYPTOFEED, BINANCE_HFT), self_trade_prevention=_STP,
    ),
    Venue(
        name="binancecoinm", cryptofeed_id=BINANCE_DELIVERY, ccxt_id="binancecoinm",
        sequencing="binance-futures", fee_source=_FEES, ticker_sizes=("B", "A"),
        recordings=(CRYPTOFEED, BINANCE_HFT), self_trade_prevention=_STP,
    ),
)
