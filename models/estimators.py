"""Online estimators of the inputs the quoting models need: σ, and A, k of λ(δ) = A·e^{−kδ}.

Both are pure: the caller passes every timestamp (ns), so replays and live runs agree.
"""

from __future__ import annotations

import math
from collections import deque

NS_PER_S = 1_000_000_000


class VolatilityEstimator:
    """EWMA of squared mid changes sampled on a fixed clock; σ in price units per √second.

    Arithmetic (not log) changes, because the quoting models assume an arithmetic Brownian
    mid. The mid is piecewise constant between updates, so the sample at each clock tick is
    the last mid seen before it. The average is normalised by its total weight, so the first
    samples give a plain mean instead of being dragged towards an arbitrary prior; before
    any sample `sigma` is `initial_sigma`. `ready` says `min_samples` intervals were seen.
    """

    __slots__ = (
        "_interval_ns",
        "_interval_s",
        "_last_mid",
        "_log_decay",
        "_next_ns",
        "_sample_mid",
        "_samples",
        "_weight",
        "_weighted_sum",
        "initial_sigma",
        "min_samples",
    )

    def __init__(
        self,
        interval_s: float = 1.0,
        half_life_s: float = 60.0,
        initial_sigma: float = 0.0,
        min_samples: int = 10,
    ) -> None:
        if interval_s <= 0 or half_life_s <= 0:
            raise ValueError("interval_s and half_life_s must be > 0")
        if initial_sigma < 0 or min_samples < 1:
            raise ValueError("initial_sigma must be >= 0 and min_samples >= 1")
        self._interval_ns = round(interval_s * NS_PER_S)
        self._interval_s = self._interval_ns / NS_PER_S
        # log of the per-interval decay; expm1 keeps 1 − decay exact for long half-lives.
        self._log_decay = -math.log(2.0) * self._interval_s / half_life_s
        self.initial_sigma = initial_sigma
        self.min_samples = min_samples
        self._next_ns: int | None = None
        self._last_mid = math.nan
        self._sample_mid = math.nan
        self._weighted_sum = 0.0
        self._weight = 0.0
        self._samples = 0

    def update(self, ts_ns: int, mid: float) -> None:
        """Feed the mid at `ts_ns`; out-of-order timestamps are treated as "now"."""
        if not math.isfinite(mid):
            raise ValueError(f"mid must be finite, got {mid}")
        next_ns = self._next_ns
        if next_ns is None:
            self._next_ns = ts_ns + self._interval_ns
            self._sample_mid = mid
        elif ts_ns >= next_ns:
            self._close_intervals((ts_ns - next_ns) // self._interval_ns + 1)
        self._last_mid = mid

    def _close_intervals(self, n: int) -> None:
        # The mid moved (if at all) in the first of the n intervals and stood still after,
        # so that change is decayed by n-1 intervals and the rest add zero-change weight.
        change = self._last_mid - self._sample_mid
        log_decay = self._log_decay
        decay_n = math.exp(n * log_decay)
        self._weighted_sum = (
            decay_n * self._weighted_sum
            + math.exp((n - 1) * log_decay) * change * change / self._interval_s
        )
        # 1 + decay + ... + decay^(n−1)
        self._weight = decay_n * self._weight + math.expm1(n * log_decay) / math.expm1(log_decay)
        self._samples += n
        self._sample_mid = self._last_mid
        self._next_ns += n * self._interval_ns

    @property
    def sigma(self) -> float:
        if self._weight == 0.0:
            return self.initial_sigma
        return math.sqrt(self._weighted_sum / self._weight)

    @property
    def ready(self) -> bool:
        return self._samples >= self.min_samples


class IntensityEstimator:
    """Fits λ(δ) = A·e^{−kδ}, the rate at which a quote δ from the mid gets hit, from trades.

    An arrival is one taker order, not one print: Binance prints a taker order that sweeps
    several resting orders as several trades with the same exchange time, the same side and
    consecutive trade ids, and the order reached its deepest print. So the prints of one
    taker order (same `exchange_ts` and `side`, consecutive integer `trade_id`s, or simply
    adjacent when the venue gives no numeric id) count once, at their maximum depth.

    Depth is signed by the taker's side and measured from the mid before the order's first
    print (the mid passed with that print: later prints of the same order come after the
    book it ate has moved): a buy taker's depth is price − mid, a sell taker's mid − price.
    A print on the wrong side of that mid (negative depth: a stale mid, or a print inside a
    spread that moved) says nothing about how deep a resting quote gets hit and is dropped.
    Without `side` the side is read from the price (the depth is then |price − mid| and no
    print can be told to be on the wrong side); without `exchange_ts` every print is taken
    for an order of its own.

    An order at depth δ would have filled any resting quote at depth ≤ δ on its side, so
    the hit rate at depth d is the number of arrivals with δ ≥ d per second, per side (both
    sides pooled, hence the division by 2). Over a rolling window the counts at depths
    d = 0, step, 2·step, ... are fitted by weighted least squares of ln(rate) on d, the
    log-linear fit of hftbacktest's GLFT example.

    `depth_step=None` lets the grid adapt: it is sized from the window's 95th percentile
    depth (placed at `_Q95_AT` of the grid) once `min_trades` arrivals are in, and re-sized
    whenever that percentile, read from the histogram at a refit, leaves the middle of the
    grid; re-binning recounts every arrival still in the window, so no count is lost. A
    given `depth_step` is a fixed grid. Per-bucket counts are kept as arrivals enter and
    leave the window, so a trade costs O(1); a fit costs O(max_depth_steps), and a re-bin
    O(n log n) in the window, which only a real change in the depth scale triggers.
    `on_trade` refits at most every `refit_interval_s`. `A` and `k` hold the last
    successful fit (the initial values before one); `ready` says a fit over at least
    `min_trades` arrivals has succeeded.
    """

    __slots__ = (
        "A",
        "_adaptive",
        "_counts",
        "_first_ns",
        "_next_fit_ns",
        "_order",
        "_order_entry",
        "_order_id",
        "_order_mid",
        "_refit_ns",
        "_window",
        "_window_ns",
        "depth_step",
        "k",
        "max_depth_steps",
        "min_trades",
        "ready",
        "rebins",
    )

    def __init__(
        self,
        depth_step: float | None = None,
        window_s: float = 600.0,
        refit_interval_s: float = 5.0,
        max_depth_steps: int = 20,
        min_trades: int = 100,
        initial_A: float = 1.0,
        initial_k: float = 1.0,
    ) -> None:
        if depth_step is not None and depth_step <= 0:
            raise ValueError(f"depth_step must be > 0, got {depth_step}")
        if window_s <= 0 or refit_interval_s < 0:
            raise ValueError("window_s must be > 0 and refit_interval_s >= 0")
        if max_depth_steps < 4 or min_trades < 1:
            raise ValueError("max_depth_steps must be >= 4 and min_trades >= 1")
        if initial_A <= 0 or initial_k <= 0:
            raise ValueError("initial_A and initial_k must be > 0")
        self.depth_step = depth_step
        self._adaptive = depth_step is None
        self.max_depth_steps = max_depth_steps
        self.min_trades = min_trades
        self._window_ns = round(window_s * NS_PER_S)
        self._refit_ns = round(refit_interval_s * NS_PER_S)
        # One [receive ts, max depth] per arrival; a list so the open order can deepen it.
        self._window: deque[list] = deque()
        self._counts = [0] * max_depth_steps
        self._first_ns: int | None = None
        self._next_fit_ns = 0
        # The taker order being printed: (exchange ts, side), its last trade id, the mid
        # before its first print and its window entry (None until a right-side print).
        self._order: tuple[int, str] | None = None
        self._order_id: int | None = None
        self._order_mid = math.nan
        self._order_entry: list | None = None
        self.A = initial_A
        self.k = initial_k
        self.ready = False
        self.rebins = 0

    def on_trade(
        self,
        ts_ns: int,
        price: float,
        mid: float,
        *,
        side: str | None = None,
        exchange_ts: int | None = None,
        trade_id: str | int | None = None,
    ) -> None:
        """Record a print at `price`; `mid` is the mid just before it printed.

        `side` is the taker's side, `exchange_ts` and `trade_id` the venue's; they tell the
        prints of one taker order apart from the next order's (see the class docstring).
        """
        if not (math.isfinite(price) and math.isfinite(mid)):
            raise ValueError(f"trade price and mid must be finite, got {price} and {mid}")
        if self._first_ns is None:
            self._first_ns = ts_ns
            self._next_fit_ns = ts_ns + self._refit_ns
        if side is None:
            side = "buy" if price >= mid else "sell"
        number = _trade_number(trade_id)
        previous = self._order_id
        self._order_id = number
        # Without the exchange's time nothing ties two prints together: each is an order.
        order = None if exchange_ts is None else (exchange_ts, side)
        if order is None or order != self._order or (
            number is not None and previous is not None and number != previous + 1
        ):
            self._order, self._order_mid, self._order_entry = order, mid, None
        depth = price - self._order_mid if side == "buy" else self._order_mid - price
        if depth >= 0:
            self._record(ts_ns, depth)
        if ts_ns >= self._next_fit_ns:
            self._next_fit_ns = ts_ns + self._refit_ns
            self.fit(ts_ns)

    def _record(self, ts_ns: int, depth: float) -> None:
        entry, window, step = self._order_entry, self._window, self.depth_step
        if entry is None:
            entry = self._order_entry = [ts_ns, depth]
            window.append(entry)
            if step is not None:
                self._counts[self._bucket(depth)] += 1
            elif len(window) >= self.min_trades:
                self._rebin()
        elif depth > entry[1]:
            # A deeper print of the same order moves its one arrival to the deeper bucket,
            # unless the window has already let the order go.
            if step is not None and window and window[-1] is entry:
                self._counts[self._bucket(entry[1])] -= 1
                self._counts[self._bucket(depth)] += 1
            entry[1] = depth

    def fit(self, now_ns: int) -> bool:
        """Refit A and k from the window ending at `now_ns`; False if the data do not allow it."""
        if self._first_ns is None:
            return False
        horizon = now_ns - self._window_ns
        window, counts = self._window, self._counts
        while window and window[0][0] <= horizon:
            depth = window.popleft()[1]
            if self.depth_step is not None:
                counts[self._bucket(depth)] -= 1
        span_s = min(now_ns - self._first_ns, self._window_ns) / NS_PER_S
        if len(window) < self.min_trades or span_s <= 0:
            return False
        if self._adaptive and (self.depth_step is None or self._grid_misfits()):
            self._rebin()
        if self.depth_step is None:
            return False
        # `self._counts`, not `counts`: a re-bin above replaced the histogram.
        fitted = fit_exponential_intensity(self._counts, self.depth_step, 2.0 * span_s)
        if fitted is None:
            return False
        self.A, self.k = fitted
        self.ready = True
        return True

    def _bucket(self, depth: float) -> int:
        return min(int(depth / self.depth_step), self.max_depth_steps - 1)

    def _grid_misfits(self) -> bool:
        """The window's 95th percentile depth, read from the histogram, left the grid's middle.

        In the open last bucket the grid is too fine to see the tail; below a third of the
        grid too coarse to resolve the decay.
        """
        counts = self._counts
        target, seen = 0.95 * sum(counts), 0
        for index, count in enumerate(counts):
            seen += count
            if seen >= target:
                return index >= self.max_depth_steps - 1 or index < self.max_depth_steps // 3
        return False

    def _rebin(self) -> None:
        depths = sorted(entry[1] for entry in self._window)
        q95 = depths[int(0.95 * (len(depths) - 1))]
        if q95 <= 0:  # every order printed at the mid: wait for a spread
            return
        self.depth_step = q95 / (_Q95_AT * self.max_depth_steps)
        counts = self._counts = [0] * self.max_depth_steps
        for depth in depths:
            counts[self._bucket(depth)] += 1
        self.rebins += 1


# Where the adaptive grid puts the 95th percentile depth, as a fraction of its length: an
# exponential's 95th percentile is 3/k, so the step comes out near 1/(4k) on 20 buckets.
_Q95_AT = 0.6


def _trade_number(trade_id: str | int | None) -> int | None:
    """The venue's trade id as an integer when it is one (Binance, Coinbase), else None."""
    if trade_id is None or isinstance(trade_id, int):
        return trade_id
    return int(trade_id) if trade_id.isdigit() else None


def fit_exponential_intensity(
    counts: list[int], depth_step: float, exposure_s: float
) -> tuple[float, float] | None:
    """(A, k) of rate(d) = A·e^{−kd} from per-bucket trade counts, or None.

    `counts[i]` holds the trades with depth in [i·step, (i+1)·step), the last bucket is
    open-ended, and rate(d) = #(depth ≥ d) / exposure_s. None when fewer than two depths
    are usable (all trades in one bucket: no decay to see). Counts of "depth ≥ d" fall with
    d, so with two or more depths the fitted k is > 0.
    """
    total = sum(counts)
    xs: list[float] = []
    ys: list[float] = []
    ws: list[int] = []
    at_least = 0
    # Walking inwards, stop at the first depth every trade reached: shallower depths are
    # flat (on a real venue nothing prints inside the spread) and would only flatten the
    # fitted decay.
    for i in range(len(counts) - 1, -1, -1):
        at_least += counts[i]
        if at_least > 0:
            xs.append(i * depth_step)
            ys.append(math.log(at_least / exposure_s))
            ws.append(at_least)
        if at_least == total:
            break
    if len(xs) < 2:
        return None
    # Weighted by count: the log of a Poisson count n has variance about 1/n, so the
    # sparse deep buckets must not pull the slope as hard as the dense shallow ones.
    weight = sum(ws)
    mean_x = sum(w * x for w, x in zip(ws, xs, strict=True)) / weight
    mean_y = sum(w * y for w, y in zip(ws, ys, strict=True)) / weight
    sxx = sum(w * (x - mean_x) ** 2 for w, x in zip(ws, xs, strict=True))
    sxy = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(ws, xs, ys, strict=True))
    slope = sxy / sxx
    return math.exp(mean_y - slope * mean_x), -slope
