"""Markouts: how the mid moved after each of our fills, at fixed horizons.

A fill's markout at horizon h is side_sign · (mid(t_fill + h) − fill price) · size in quote
currency (positive = the fill was good for us), where mid(t) is the first mid at or after t.
Horizon 0 is the edge at the fill itself, against the mid the caller saw then. Fills whose
horizon the mids never reached are pending, not zero.

Each horizon keeps a FIFO of fills waiting for it; fills arrive in time order, so the due
times in a FIFO are sorted and `on_mid` only ever looks at heads: O(1) amortised per call.
The earliest due time over all heads is kept too, because `on_mid` runs on every market
event and almost always finds nothing due.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal

from models.events import Fill

SECOND_NS = 1_000_000_000
DEFAULT_HORIZONS_NS = (1 * SECOND_NS, 5 * SECOND_NS, 30 * SECOND_NS)
ZERO = Decimal(0)
BPS = 10_000


class _Horizon:
    __slots__ = ("bps_sum", "count", "horizon_ns", "sum", "waiting")

    def __init__(self, horizon_ns: int) -> None:
        self.horizon_ns = horizon_ns
        self.waiting: deque[_FillRecord] = deque()
        self.count = 0
        self.sum = ZERO
        self.bps_sum = 0.0

    def add(self, record: _FillRecord, mid: Decimal) -> None:
        move = mid - record.price if record.sign > 0 else record.price - mid
        self.count += 1
        self.sum += move * record.size
        self.bps_sum += float(move / record.price) * BPS

    def stats(self) -> dict:
        return {
            "horizon_ns": self.horizon_ns,
            "count": self.count,
            "sum": self.sum,
            "mean": self.sum / self.count if self.count else None,
            "mean_bps": self.bps_sum / self.count if self.count else None,
            "pending": len(self.waiting),
        }


class _FillRecord:
    __slots__ = ("price", "sign", "size", "ts")

    def __init__(self, fill: Fill) -> None:
        self.ts = fill.ts
        self.sign = 1 if fill.side == "buy" else -1
        self.price = fill.price
        self.size = fill.size


class MarkoutTracker:
    __slots__ = ("_at_fill", "_horizons", "_last_fill_ts", "_next_due_ns")

    def __init__(self, horizons_ns: tuple[int, ...] = DEFAULT_HORIZONS_NS) -> None:
        if not horizons_ns or any(h <= 0 for h in horizons_ns):
            raise ValueError(f"horizons must be positive nanoseconds: {horizons_ns!r}")
        if len(set(horizons_ns)) != len(horizons_ns):
            raise ValueError(f"horizons repeat: {horizons_ns!r}")
        self._at_fill = _Horizon(0)
        self._horizons = tuple(_Horizon(h) for h in sorted(horizons_ns))
        self._last_fill_ts = 0
        self._next_due_ns = math.inf

    def on_fill(self, fill: Fill, mid_at_fill: Decimal) -> None:
        if fill.ts < self._last_fill_ts:
            raise ValueError(f"fill {fill.trade_id} at {fill.ts} is older than the previous fill")
        self._last_fill_ts = fill.ts
        record = _FillRecord(fill)
        self._at_fill.add(record, mid_at_fill)
        for horizon in self._horizons:
            horizon.waiting.append(record)
        # Heads only change in FIFOs that were empty; the shortest horizon is due first.
        self._next_due_ns = min(self._next_due_ns, record.ts + self._horizons[0].horizon_ns)

    @property
    def next_due_ns(self) -> float:
        """`on_mid` before this time does nothing: a caller may skip making the mid."""
        return self._next_due_ns

    def on_mid(self, ts_ns: int, mid: Decimal) -> None:
        if ts_ns < self._next_due_ns:
            return
        next_due = math.inf
        for horizon in self._horizons:
            waiting = horizon.waiting
            due_before = ts_ns - horizon.horizon_ns
            while waiting and waiting[0].ts <= due_before:
                horizon.add(waiting.popleft(), mid)
            if waiting:
                next_due = min(next_due, waiting[0].ts + horizon.horizon_ns)
        self._next_due_ns = next_due

    def results(self) -> dict[str, dict]:
        """Per horizon, ascending, keyed by `horizon_label`: count, sum and mean in quote
        currency (Decimal), mean_bps (float, per unit of price), pending."""
        return {horizon_label(h.horizon_ns): h.stats() for h in (self._at_fill, *self._horizons)}


def horizon_label(horizon_ns: int) -> str:
    """`at_fill`, `1s`, `250ms`, `1500us`...: the largest unit that divides the horizon."""
    if horizon_ns == 0:
        return "at_fill"
    for unit, ns in (("s", SECOND_NS), ("ms", 1_000_000), ("us", 1_000)):
        if horizon_ns % ns == 0:
            return f"{horizon_ns // ns}{unit}"
    return f"{horizon_ns}ns"
