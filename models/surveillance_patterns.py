"""The incident detectors of `models.surveillance`: wash trades, spoofing and layering. Pure.

- **Wash trade**: our own orders executed against each other. Certain when one trade id is
  both a buy and a sell of ours; probable when a buy and a sell of ours execute at the same
  price and size within `wash_window_ms` (a wash through a counterparty in between).
- **Spoofing**: a large order (at least `large_order_multiple` times the median size of our
  recent orders) cancelled without any fill within `spoof_max_lifetime_s` of its
  acknowledgement, while we traded on the other side during its life.
- **Layering**: the same, with `layering_min_orders` or more such large unfilled orders at
  distinct prices on one side at once (the ones still open when the first of them is
  cancelled count with it: their cancels usually follow within milliseconds). Each order is
  reported once, in the first incident that names it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from statistics import median
from typing import TYPE_CHECKING

from models.events import Fill, OrderEvent, Side

if TYPE_CHECKING:
    from models.surveillance import SurveillanceConfig

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
SIZE_HISTORY = 100  # recent order sizes the median is taken over
MIN_SIZE_HISTORY = 10  # fewer known sizes: nothing is judged large yet


@dataclass(frozen=True, slots=True)
class Incident:
    ts: int
    kind: str  # wash_trade | spoofing | layering
    value: float
    threshold: float
    window_ns: int
    detail: str
    client_order_ids: list[str]


@dataclass(slots=True)
class _Order:
    side: Side
    price: Decimal | None
    size: Decimal
    ack_ts: int
    filled: bool = False
    cancel_ts: int | None = None


@dataclass(frozen=True, slots=True)
class _Execution:
    ts: int
    side: Side
    price: Decimal
    size: Decimal
    trade_id: str
    client_order_id: str


class PatternDetector:
    def __init__(self, config: SurveillanceConfig) -> None:
        self.config = config
        self._lifetime_ns = int(config.spoof_max_lifetime_s * NS_PER_S)
        self._wash_ns = int(config.wash_window_ms * NS_PER_MS)
        self._keep_ns = max(self._lifetime_ns, self._wash_ns)
        self._open: dict[str, _Order] = {}
        self._cancelled: deque[tuple[str, _Order]] = deque()  # large, unfilled, recent
        self._sizes: deque[Decimal] = deque(maxlen=SIZE_HISTORY)
        self._executions: deque[_Execution] = deque()
        self._washed: set[str] = set()  # trade ids already reported
        self._reported: set[str] = set()  # client ids already reported (bounded below)

    # -- orders ------------------------------------------------------------------------------

    def on_order_event(self, event: OrderEvent) -> list[Incident]:
        cid, kind = event.client_order_id, event.kind
        if kind == "ack":
            if cid not in self._open:
                self._open[cid] = _Order(event.side, event.price, event.size, event.ts)
                self._sizes.append(event.size)
            return []
        order = self._open.get(cid)
        if order is None:
            return []
        if kind == "amend":
            order.price, order.size = event.price, event.size
        elif kind in ("partial_fill", "fill"):
            order.filled = True
        if kind in ("fill", "reject") or (kind == "cancel" and order.filled):
            del self._open[cid]
        elif kind == "cancel":
            del self._open[cid]
            return self._on_unfilled_cancel(cid, order, event.ts)
        return []

    def _large(self, size: Decimal) -> bool:
        sizes = self._sizes
        if len(sizes) < MIN_SIZE_HISTORY:
            return False
        return size >= Decimal(str(self.config.large_order_multiple)) * median(sizes)

    def _on_unfilled_cancel(self, cid: str, order: _Order, now: int) -> list[Incident]:
        if not self._large(order.size) or now - order.ack_ts > self._lifetime_ns:
            return []
        order.cancel_ts = now
        cancelled = self._cancelled
        cancelled.append((cid, order))
        while cancelled and cancelled[0][1].cancel_ts < now - self._lifetime_ns:
            cancelled.popleft()
        if cid in self._reported:
            return []
        traded = [e for e in self._executions
                  if e.side != order.side and order.ack_ts <= e.ts <= now]
        if not traded:
            return []
        layer = {cid: order}
        for other_id, other in (*cancelled, *self._open.items()):
            if (other_id not in self._reported and other.side == order.side and not other.filled
                    and other.ack_ts <= now and (other.cancel_ts or now) >= order.ack_ts
                    and self._large(other.size)):
                layer[other_id] = other
        prices = {o.price for o in layer.values()}
        ids = sorted(layer)
        self._remember(ids)
        median_size = median(self._sizes)
        other_side = "buy" if order.side == "sell" else "sell"
        if len(prices) >= self.config.layering_min_orders:
            return [Incident(
                now, "layering", float(len(prices)), float(self.config.layering_min_orders),
                self._lifetime_ns,
                f"{len(layer)} large {order.side} orders at {len(prices)} prices (median size "
                f"{median_size}) cancelled unfilled while we {other_side} {len(traded)} times",
                ids,
            )]
        return [Incident(
            now, "spoofing", float(order.size / median_size),
            self.config.large_order_multiple, self._lifetime_ns,
            f"{order.side} {order.size} at {order.price} ({order.size / median_size:.1f}x the "
            f"median size) cancelled unfilled after {(now - order.ack_ts) / NS_PER_S:.3f} s "
            f"while we {other_side} {len(traded)} times", ids,
        )]

    def _remember(self, ids: list[str]) -> None:
        reported = self._reported
        reported.update(ids)
        if len(reported) > 10 * SIZE_HISTORY:  # old ids cannot come back: only the recent
            reported.clear()
            reported.update(ids)

    # -- executions --------------------------------------------------------------------------

    def on_fill(self, fill: Fill) -> list[Incident]:
        order = self._open.get(fill.client_order_id)
        if order is not None:
            order.filled = True
        now = fill.ts
        executions = self._executions
        while executions and executions[0].ts < now - self._keep_ns:
            executions.popleft()
        incident = self._wash(fill)
        executions.append(_Execution(now, fill.side, fill.price, fill.size, fill.trade_id,
                                     fill.client_order_id))
        return [incident] if incident is not None else []

    def _wash(self, fill: Fill) -> Incident | None:
        for earlier in reversed(self._executions):
            if earlier.side == fill.side or earlier.trade_id in self._washed:
                continue
            same_trade = earlier.trade_id == fill.trade_id
            gap = fill.ts - earlier.ts
            if not same_trade and not (
                gap <= self._wash_ns and earlier.price == fill.price
                and earlier.size == fill.size
            ):
                continue
            self._washed.update((earlier.trade_id, fill.trade_id))
            if len(self._washed) > 10 * SIZE_HISTORY:
                self._washed = {earlier.trade_id, fill.trade_id}
            how = (f"one trade {fill.trade_id} is both our buy and our sell" if same_trade else
                   f"our buy and sell of {fill.size} at {fill.price} "
                   f"{gap / NS_PER_MS:.1f} ms apart")
            return Incident(fill.ts, "wash_trade", gap / NS_PER_MS, self.config.wash_window_ms,
                            self._wash_ns, how,
                            sorted({earlier.client_order_id, fill.client_order_id}))
        return None
