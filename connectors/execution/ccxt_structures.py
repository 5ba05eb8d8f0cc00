"""ccxt's unified order and trade structures as the executor's exact types.

The paper venue fills these structures with `Decimal`s; live ccxt exchanges built by
`CcxtVenue` parse numbers as strings (`exchange.number = str`). Either way nothing passes
through a binary float on its way to a `Decimal`.
"""

from __future__ import annotations

from decimal import Decimal

from models.events import Fill
from models.execution.orders import CCXT_STATUS, PENDING, VenueOrder

NS_PER_MS = 1_000_000


def decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError(f"{value!r} is a float: ccxt must parse numbers as strings here")
    return Decimal(str(value))


def venue_order(order: dict) -> VenueOrder:
    """A ccxt order; a paper order still travelling to the venue is PENDING."""
    status = CCXT_STATUS.get(order.get("status") or "open", PENDING)
    if order.get("info", {}).get("in_flight"):
        status = PENDING
    amount = decimal(order.get("amount")) or Decimal(0)
    filled = decimal(order.get("filled"))
    return VenueOrder(
        client_order_id=order.get("clientOrderId") or "",
        exchange_order_id=None if order.get("id") is None else str(order["id"]),
        symbol=order["symbol"],
        side=order["side"],
        price=decimal(order.get("price")),
        amount=amount,
        filled=filled if filled is not None else Decimal(0),
        status=status,
        ts=(order.get("lastUpdateTimestamp") or order.get("timestamp") or 0) * NS_PER_MS,
    )


def fill(trade: dict, venue: str, client_order_id: str, quote_currency: str) -> Fill:
    """A ccxt trade of ours; `client_order_id` because not every venue echoes it in trades."""
    fee = trade.get("fee") or {}
    fee_cost = decimal(fee.get("cost"))
    return Fill(
        venue=venue,
        symbol=trade["symbol"],
        ts=(trade.get("info") or {}).get("timestamp_ns")
        or (trade.get("timestamp") or 0) * NS_PER_MS,
        client_order_id=client_order_id,
        trade_id=str(trade["id"]),
        side=trade["side"],
        price=decimal(trade["price"]),
        size=decimal(trade["amount"]),
        fee=fee_cost if fee_cost is not None else Decimal(0),
        fee_currency=fee.get("currency") or quote_currency,
        liquidity="maker" if trade.get("takerOrMaker") == "maker" else "taker",
        # The paper venue says why the fill happened (live venues do not).
        **{name: info[name] for name in _CAUSALITY if name in (info := trade.get("info") or {})},
    )


_CAUSALITY = (
    "cause", "cause_exchange_ts", "order_trigger_exchange_ts", "order_arrival_exchange_ts"
)


def wallet_totals(balance: dict) -> dict[str, Decimal]:
    """Total per currency from a ccxt balance, as fills and fees move it.

    For futures accounts ccxt's `total` is the margin balance (Binance USD-M and COIN-M:
    `marginBalance`), which adds the open positions' unrealized PnL at the venue's mark price;
    our fills imply the wallet balance. Where the raw answer lists its assets with a
    `walletBalance` (Binance's futures accounts) that is taken; every other currency, and
    every spot account, keeps ccxt's `total`.
    """
    totals = {
        currency: decimal(total)
        for currency, total in (balance.get("total") or {}).items() if total is not None
    }
    info = balance.get("info")
    assets = info.get("assets") if isinstance(info, dict) else None
    for asset in assets if isinstance(assets, list) else ():
        wallet = decimal(asset.get("walletBalance")) if isinstance(asset, dict) else None
        if wallet is not None and asset.get("asset") in totals:
            totals[asset["asset"]] = wallet
    return totals


def signed_contracts(positions: list[dict]) -> dict[str, Decimal]:
    """Signed contracts per symbol from ccxt position structures (`contracts` is unsigned,
    `side` long or short; hedge mode's two sides of a symbol add up)."""
    held: dict[str, Decimal] = {}
    for position in positions:
        contracts = decimal(position.get("contracts")) or Decimal(0)
        if position.get("side") == "short":
            contracts = -contracts
        symbol = position["symbol"]
        held[symbol] = held.get(symbol, Decimal(0)) + contracts
    return {symbol: contracts for symbol, contracts in held.items() if contracts}
