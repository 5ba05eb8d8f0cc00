"""Order latencies of a simulated venue, on the exchange clock.

hftbacktest's latency model is the reference: market data carries its own latency (exchange
time to local receive time, from the recording), while our requests have three that are set
apart because venues treat them differently:

- *entry*: from sending a new order (or an amend) to the matching engine receiving it;
- *cancel*: the same for a cancel, which many venues fast-track;
- *response*: from the matching engine acting (ack, fill, cancel) to us hearing of it.

Each is constant or interpolated over time from measured rows (`InterpolatedLatency`), the
way hftbacktest's `IntpOrderLatency` replays latencies measured live. The defaults are
hftbacktest's own example settings (10 ms each way): docs/paper-venue.md says why zero is
never a default.

>>> latency = ConstantLatency(entry_ns=2_000_000, cancel_ns=1_000_000, response_ns=3_000_000)
>>> latency.entry(0), latency.cancel(0), latency.response(0)
(2000000, 1000000, 3000000)
>>> rows = [LatencyRow(0, 1_000_000, 1_000_000, 1_000_000),
...         LatencyRow(10, 3_000_000, 5_000_000, 1_000_000)]
>>> InterpolatedLatency(rows).entry(5)
2000000
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import pairwise
from typing import NamedTuple, Protocol

NS_PER_MS = 1_000_000
DEFAULT_LATENCY_MS = 10.0


class LatencyModel(Protocol):
    def entry(self, ts_ns: int) -> int: ...

    def cancel(self, ts_ns: int) -> int: ...

    def response(self, ts_ns: int) -> int: ...


class ConstantLatency:
    __slots__ = ("_cancel", "_entry", "_response")

    def __init__(self, *, entry_ns: int, cancel_ns: int, response_ns: int) -> None:
        for name, value in (("entry", entry_ns), ("cancel", cancel_ns), ("response", response_ns)):
            if value < 0:
                raise ValueError(f"{name} latency must be >= 0 ns, got {value}")
        self._entry, self._cancel, self._response = entry_ns, cancel_ns, response_ns

    @classmethod
    def from_ms(cls, entry_ms: float, cancel_ms: float, response_ms: float) -> ConstantLatency:
        return cls(
            entry_ns=round(entry_ms * NS_PER_MS),
            cancel_ns=round(cancel_ms * NS_PER_MS),
            response_ns=round(response_ms * NS_PER_MS),
        )

    def entry(self, ts_ns: int) -> int:
        return self._entry

    def cancel(self, ts_ns: int) -> int:
        return self._cancel

    def response(self, ts_ns: int) -> int:
        return self._response

    def __reduce__(self):
        return (_constant, (self._entry, self._cancel, self._response))


def _constant(entry: int, cancel: int, response: int) -> ConstantLatency:
    return ConstantLatency(entry_ns=entry, cancel_ns=cancel, response_ns=response)


class LatencyRow(NamedTuple):
    """Latencies measured at `ts_ns` (local time of the request)."""

    ts_ns: int
    entry_ns: int
    cancel_ns: int
    response_ns: int


class InterpolatedLatency:
    """Linear interpolation between measured rows; held flat before the first and after the
    last. Rows must be in time order."""

    __slots__ = ("_rows", "_times")

    def __init__(self, rows: list[LatencyRow]) -> None:
        if not rows:
            raise ValueError("a latency file needs at least one row")
        for before, after in pairwise(rows):
            if after.ts_ns < before.ts_ns:
                raise ValueError(f"latency rows out of time order at ts {after.ts_ns}")
        for row in rows:
            if min(row.entry_ns, row.cancel_ns, row.response_ns) < 0:
                raise ValueError(f"negative latency in the row at ts {row.ts_ns}")
        self._rows = list(rows)
        self._times = [row.ts_ns for row in rows]

    def _at(self, ts_ns: int, field: int) -> int:
        rows = self._rows
        i = bisect_right(self._times, ts_ns)
        if i == 0:
            return rows[0][field]
        if i == len(rows):
            return rows[-1][field]
        before, after = rows[i - 1], rows[i]
        span = after.ts_ns - before.ts_ns
        if span == 0:
            return after[field]
        share = (ts_ns - before.ts_ns) / span
        return round(before[field] + (after[field] - before[field]) * share)

    def entry(self, ts_ns: int) -> int:
        return self._at(ts_ns, 1)

    def cancel(self, ts_ns: int) -> int:
        return self._at(ts_ns, 2)

    def response(self, ts_ns: int) -> int:
        return self._at(ts_ns, 3)
