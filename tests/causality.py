"""An independent check that every backtest fill is one a venue could really have given.

It replays the recording itself (not through the paper venue), keeping the freshest touch
(`models.fresh_book.FreshBook`) in stream order, and notes the touch each order met when it
arrived: the state after every event whose exchange time is not later than the arrival.
Then for every fill:

- `order_trigger_exchange_ts < order_arrival_exchange_ts <= cause_exchange_ts`, the second
  strict for maker fills: nothing fills an order but market activity after it arrived;
- a maker fill is not priced through the freshest touch at arrival (a post-only order that
  crossed it would have been rejected).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from connectors.replay.recordings import Recordings
from models.book import OrderBook
from models.events import BBO, BookDelta, BookSnapshot, DeadLetter, Fill, exchange_time
from models.fresh_book import FreshBook


def causality_violations(paths: Iterable[Path], fills: list[Fill]) -> list[str]:
    """One line per violated rule; empty when every fill is causal."""
    arrivals: dict[str, list[int]] = {}
    for fill in fills:
        arrivals.setdefault(f"{fill.venue}:{fill.symbol}", []).append(
            fill.order_arrival_exchange_ts or 0
        )
    pending = {key: sorted(set(times)) for key, times in arrivals.items()}
    touch: dict[tuple[str, int], tuple] = {}
    books: dict[str, FreshBook] = {}
    for event in Recordings(list(paths)).events():
        if isinstance(event, DeadLetter):
            continue
        key = f"{event.venue}:{event.symbol}"
        book = books.get(key)
        if book is None:
            book = books[key] = FreshBook(OrderBook(event.venue, event.symbol))
        times = pending.get(key)
        exchange_ts = exchange_time(event)
        while times and times[0] < exchange_ts:
            touch[key, times.pop(0)] = (book.bid, book.ask)
        if isinstance(event, BBO | BookDelta | BookSnapshot):
            book.apply(event)
    for key, times in pending.items():
        for arrival in times:
            touch[key, arrival] = (books[key].bid, books[key].ask)

    problems = []
    for fill in fills:
        trigger, arrival, cause = (
            fill.order_trigger_exchange_ts, fill.order_arrival_exchange_ts, fill.cause_exchange_ts
        )
        name = f"{fill.trade_id} ({fill.liquidity} {fill.side} {fill.size} @ {fill.price})"
        if None in (trigger, arrival, cause):
            problems.append(f"{name}: no causality fields")
            continue
        maker = fill.liquidity == "maker"
        if not (trigger < arrival and (arrival < cause if maker else arrival <= cause)):
            problems.append(f"{name}: trigger {trigger}, arrival {arrival}, cause {cause}")
        bid, ask = touch[f"{fill.venue}:{fill.symbol}", arrival]
        if maker and _through(fill.side, fill.price, bid, ask):
            problems.append(f"{name}: priced through the touch {bid} / {ask} at arrival")
    return problems


def _through(side: str, price: Decimal, bid, ask) -> bool:
    if side == "buy":
        return ask is not None and price >= ask[0]
    return bid is not None and price <= bid[0]
