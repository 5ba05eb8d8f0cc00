"""Diff a desired set of quotes against live orders, with the least churn.

A live order within the tolerance of a desired quote stays (as Hummingbot's order refresh
tolerance); everything else is cancelled or placed. Pure logic: the executor acts on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from models.events import Quote, Side

T = TypeVar("T", bound="LiveOrder")


@dataclass(frozen=True, slots=True)
class LiveOrder:
    client_order_id: str
    side: Side
    price: Decimal
    remaining: Decimal


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a live order may be from the desired quote and still stay."""

    price: Decimal = Decimal(0)
    size_fraction: Decimal = Decimal(0)


def match_side(
    desired: Sequence[Quote], live: Iterable[T], tolerance: Tolerance
) -> tuple[list[Quote], list[T]]:
    """One side's diff: the desired quotes no live order covers (in order), and the live
    orders no desired quote keeps (the orders themselves, for callers that act on them)."""
    unmatched = list(live)
    missing = []
    max_price_move, size_fraction = tolerance.price, tolerance.size_fraction
    for quote in desired:
        price, size = quote.price, quote.size
        # The first live order that fits the quote stays: its price within the tolerance and
        # its remaining size within the size fraction (written out: it runs for every intent).
        for i, order in enumerate(unmatched):
            if (
                abs(order.price - price) <= max_price_move
                and abs(order.remaining - size) <= size * size_fraction
            ):
                del unmatched[i]
                break
        else:
            missing.append(quote)
    return missing, unmatched
