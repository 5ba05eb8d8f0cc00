"""From a desired state and our orders to the requests with the least churn.

`models.order_diff.match_side` says which orders stay (within the tolerance) and which quotes
are missing; here each missing quote gets its level (for its client order id), and a cancel
and a place on the same side become one amend when the venue can amend in place and one amend
costs less of the rate limit than a cancel and a new order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from models.events import OrderIntent, Quote, Side
from models.execution.orders import TrackedOrder
from models.order_diff import Tolerance, match_side


@dataclass(frozen=True, slots=True)
class RequestCosts:
    """Rate-limit cost of each request kind (the venue's endpoint weights)."""

    create: float = 1.0
    cancel: float = 1.0
    amend: float = 1.0
    fetch_order: float = 1.0
    fetch_open_orders: float = 1.0
    fetch_balance: float = 1.0
    fetch_my_trades: float = 1.0

    @property
    def amend_is_cheaper(self) -> bool:
        return self.amend < self.cancel + self.create


UNIT_COSTS = RequestCosts()


# Structs, not dataclasses: a plan and its parts are made for every intent, and a frozen
# dataclass's __init__ costs ~0.5 us (an object.__setattr__ per field), a struct's ~0.1 us.
class Placement(msgspec.Struct, frozen=True):
    side: Side
    level: int  # index of the quote in the intent's bids or asks
    quote: Quote


class Amendment(msgspec.Struct, frozen=True):
    order: TrackedOrder
    quote: Quote


class Plan(msgspec.Struct):
    cancels: list[TrackedOrder] = msgspec.field(default_factory=list)
    amends: list[Amendment] = msgspec.field(default_factory=list)
    places: list[Placement] = msgspec.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cancels or self.amends or self.places)


def plan(
    intent: OrderIntent, quoting: Sequence[TrackedOrder], tolerance: Tolerance, amend: bool
) -> Plan:
    """`quoting`: our unfinished orders on the instrument that no cancel is pending for."""
    result = Plan()
    for side, desired in (("buy", intent.bids), ("sell", intent.asks)):
        live = [o for o in quoting if o.side == side]
        if not desired and not live:
            continue  # nothing wanted, nothing there
        missing, cancels = match_side(desired, live, tolerance)
        if not missing and not cancels:
            continue  # every live order stays
        places = _with_levels(side, desired, missing)
        if amend:
            pairs = min(len(cancels), len(places))
            if pairs:
                result.amends.extend(
                    Amendment(order, placement.quote)
                    for order, placement in zip(cancels[:pairs], places[:pairs], strict=True)
                )
                cancels, places = cancels[pairs:], places[pairs:]
        result.cancels.extend(cancels)
        result.places.extend(places)
    return result


def _with_levels(side: Side, desired: Sequence[Quote], missing: list[Quote]) -> list[Placement]:
    """The missing quotes are a subsequence of the desired ones, in order: walk both once.

    By identity, so two levels asking for the same price and size keep distinct levels.
    """
    placements = []
    level = 0
    for quote in missing:
        while desired[level] is not quote:
            level += 1
        placements.append(Placement(side, level, quote))
        level += 1
    return placements
