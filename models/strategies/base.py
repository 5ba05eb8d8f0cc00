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

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import msgspec


# The state and the quotes are frozen msgspec structs, not frozen dataclasses: the quote engine
# makes them on every requote, and a frozen dataclass's __init__ (an object.__setattr__ per
# field) cost ~1.3 us for the state alone, a struct's ~0.1 us.
class MarketState(msgspec.Struct, frozen=True):
    mid: float
    best_bid: float | None
    best_ask: float | None
    inventory: float  # signed, in base units (e.g. BTC)
    sigma: float  # mid volatility, price units per sqrt(second)
    A: float  # order-arrival intensity scale, 1/second
    k: float  # intensity decay, 1/price unit
    time_left: float | None  # seconds to horizon for finite-horizon models, None otherwise
    skew: float = 0.0  # extra shift of the reservation price (price units)


class QuoteLevel(msgspec.Struct, frozen=True):
    price: float
    size: float


class DesiredQuotes(msgspec.Struct, frozen=True):
    bids: tuple[QuoteLevel, ...]
    asks: tuple[QuoteLevel, ...]
    reservation_price: float


class Strategy(Protocol):
    """A quoting model. One that declares `memoryless = True` promises that `quote` is a
    function of the state and its parameters alone (it keeps no state of its own): the quote
    engine then skips asking again when the state has not changed (`models.quote_engine`)."""

    name: ClassVar[str]
    order_size: float

    def quote(self, state: MarketState) -> DesiredQuotes: ...


def is_memoryless(strategy: object) -> bool:
    """The strategy declared that `quote` depends on the state alone (default: no)."""
    return getattr(strategy, "memoryless", False) is True


@dataclass(frozen=True, slots=True)
class Bounds:
    """The range a parameter must lie in: above `gt` (or at least `ge`) and at most `le`.

    Declared beside each parameter, the one source the registry, the API and the quote flow
    check against, before anything is built from a value. Every parameter has a lower
    bound, so NaN (which compares false) is always out; infinity is in only where
    `le` is infinite (an inventory bound that is off).
    """

    gt: float | None = None
    ge: float | None = None
    le: float = math.inf

    def problem(self, name: str, value: float) -> str | None:
        if self.gt is not None and not value > self.gt:
            return f"{name} must be > {self.gt:g}, got {value}"
        if self.ge is not None and not value >= self.ge:
            return f"{name} must be >= {self.ge:g}, got {value}"
        if not value <= self.le:
            return f"{name} must be <= {self.le:g}, got {value}"
        return None

    def __str__(self) -> str:
        low = f"> {self.gt:g}" if self.gt is not None else f">= {self.ge:g}"
        return low if self.le == math.inf else f"{low}, <= {self.le:g}"


def param(
    default: float, help: str, *, gt: float | None = None, ge: float | None = None,
    le: float = math.inf,
) -> Any:
    """A strategy parameter: a dataclass field whose help text and bounds the registry
    publishes."""
    if (gt is None) == (ge is None):
        raise TypeError("a parameter needs exactly one lower bound, gt or ge")
    return field(default=default, metadata={"help": help, "bounds": Bounds(gt, ge, le)})


def lot_param() -> Any:
    return param(1.0, "size of each quote in base units: one lot", gt=0, le=1e9)


def gamma_param() -> Any:
    return param(0.1, "risk aversion, 1/(price unit x lot)", gt=0, le=1e6)


def max_lots_param() -> Any:
    return param(math.inf, "at |inventory| >= this many lots quote only the reducing side",
                 gt=0)


def check_bounds(strategy: Any) -> None:
    """Every parameter of a strategy dataclass within its declared bounds (ValueError)."""
    for spec in dataclasses.fields(strategy):
        bounds = spec.metadata.get("bounds")
        if bounds is not None:
            reason = bounds.problem(spec.name, getattr(strategy, spec.name))
            require(reason is None, str(reason))


def require(condition: bool, message: str) -> None:
    """Parameter validation that reads like the rule it enforces."""
    if not condition:
        raise ValueError(message)


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
