"""Risk: limits, pre-trade checks, post-trade monitors and the trading state machine."""

from models.risk.engine import RiskEngine
from models.risk.limits import InstrumentLimits, LimitsError, RiskLimits, parse_limits
from models.risk.posttrade import PnlMonitor, TakerPriceRejected, taker_limit_price
from models.risk.pretrade import ACCEPTED, Decision, OrderRequest, RiskContext
from models.risk.state import TradingState

__all__ = [
    "ACCEPTED",
    "Decision",
    "InstrumentLimits",
    "LimitsError",
    "OrderRequest",
    "PnlMonitor",
    "RiskContext",
    "RiskEngine",
    "RiskLimits",
    "TakerPriceRejected",
    "TradingState",
    "parse_limits",
    "taker_limit_price",
]
