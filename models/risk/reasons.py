"""Stable reason codes of every risk decision.

They appear in `RiskEvent.reason_code`, in rejections sent back to callers and in the audit
trail, and dashboards count by them: never rename one, only add.
"""

from __future__ import annotations

# Pre-trade rejections. A request the venue's filters would refuse carries the instrument's
# own codes instead (`TICK_SIZE`, `STEP_SIZE`, `MIN_QTY`, `MIN_NOTIONAL`, ...).
INVALID_ORDER = "INVALID_ORDER"
STATE_HALTED = "STATE_HALTED"
STATE_REDUCING = "STATE_REDUCING"
REDUCE_ONLY = "REDUCE_ONLY"
STALE_MARKET_DATA = "STALE_MARKET_DATA"
MAX_ORDER_RATE = "MAX_ORDER_RATE"
MAX_ORDER_SIZE = "MAX_ORDER_SIZE"
MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
PRICE_BAND = "PRICE_BAND"
SELF_TRADE = "SELF_TRADE"
MIN_SPREAD = "MIN_SPREAD"
MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"
MAX_POSITION = "MAX_POSITION"
MAX_TOTAL_POSITION = "MAX_TOTAL_POSITION"

# Taker orders priced from book depth.
SLIPPAGE = "SLIPPAGE"
INSUFFICIENT_DEPTH = "INSUFFICIENT_DEPTH"

# Post-trade breaches that change the trading state.
STOP_LOSS = "STOP_LOSS"
DAILY_LOSS = "DAILY_LOSS"
MAX_DRAWDOWN = "MAX_DRAWDOWN"

# Control commands.
CMD_PAUSE = "CMD_PAUSE"
CMD_REDUCE = "CMD_REDUCE"
CMD_KILL = "CMD_KILL"
CMD_RESUME = "CMD_RESUME"
CMD_REJECTED = "CMD_REJECTED"
LIMITS_CHANGED = "LIMITS_CHANGED"
LIMITS_REJECTED = "LIMITS_REJECTED"
