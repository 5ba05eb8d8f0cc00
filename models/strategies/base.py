"""The contract between the quote flow and the quoting models.

Conventions every model follows:
- Prices are floats in the venue's price units. Models never round: the quote flow puts
  bids down and asks up onto the tick grid with `models.instrument`.
- Model inventory is in lots: q = inventory / order_size. Parameters that bound inventory
  (`max_lots`) are in lots too, so one set of parameters fits any contract size.
- `bids` are ordered best (highest) first, `asks` best (lowest) first. An empty side means
  "do not quote this side" (the inventory limit is reached).
- `skew` from the state (e.g. a prediction) shifts the reservation price, and with it every
  quote, by that many price units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True, slots=True)
class MarketState:
    mid: float
    best_bid: float | None
    best_ask: float | None
    inventory: float  # signed, in base units (e.g. BTC)
    sigma: float  # mid volatility, price units per sqrt(second)
    A: float  # order-arrival intensity scale, 1/second
    k: float  # intensity decay, 1/price unit
    time_left: float | None  # seconds to horizon for finite-horizon models, None otherwise
    skew: float = 0.0  # extra shift of the reservation price (price units)


@dataclass(frozen=True, slots=True)
class QuoteLevel:
    price: float
    size: float


@dataclass(frozen=True, slots=True)
class DesiredQuotes:
    bids: tuple[QuoteLevel, ...]
    asks: tuple[QuoteLevel, ...]
    reservation_price: float


class Strategy(Protocol):
    name: ClassVar[str]
    order_size: float

    def quote(self, state: MarketState) -> DesiredQuotes: ...


def param(default: float, help: str) -> Any:
    """A strategy parameter: a dataclass field whose help text the registry publishes."""
    return field(default=default, metadata={"help": help})


def lot_param() -> Any:
    return param(1.0, "size of each quote in base units: one lot")


def gamma_param() -> Any:
    return param(0.1, "risk aversion, 1/(price unit x lot)")


def max_lots_param() -> Any:
    return param(math.inf, "at |inventory| >= this many lots quote only the reducing side")


def require(condition: bool, message: str) -> None:
    """Parameter validation that reads like the rule it enforces."""
    if not condition:
        raise ValueError(message)


def require_positive(**values: float) -> None:
    for name, value in values.items():
        require(value > 0, f"{name} must be > 0, got {value}")


def single_level_quotes(
    bid: float, ask: float, size: float, q: float, max_lots: float, reservation: float
) -> DesiredQuotes:
    """One order per side, dropping the side that would take |q| past `max_lots`.

    At q >= max_lots another bid fill would grow the long position, so only the ask stays
    (and symmetrically for shorts): the one-sided mode all models share.
    """
    bids = (QuoteLevel(bid, size),) if q < max_lots else ()
    asks = (QuoteLevel(ask, size),) if q > -max_lots else ()
    return DesiredQuotes(bids, asks, reservation)
