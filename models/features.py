"""Short-horizon features of one instrument's market, from its book and trades.

`MarketFeatures` takes an instrument's market events (`apply`, O(1) per event apart from
the L2 book's own update) and, at the instants a caller samples on its clock, computes a
feature vector (`sample`, O(depth + horizons)). Work that only a sample needs, reading the
book's levels or converting Decimals to floats, waits for the sample: events arrive far more
often than samples.

Every feature is scale-free (basis points of the mid, or a ratio in [-1, 1]) so one model
configuration fits BTC and ETH, spot and perpetual alike:

- `spread_bps`: best ask − best bid;
- `imbalance_l1`: (bid size − ask size) / (bid size + ask size) at the touch;
- `imbalance_depth`: the same over the book's best `depth_levels` levels per side (the touch
  again when there is no synced L2 book);
- `microprice_bps`: size-weighted microprice − mid;
- `trade_flow`: (taker buy volume − taker sell volume) / total over the last `trade_window_ns`;
- `trade_sign`: (taker buys − taker sells) / trades over the same window, by count: many
  small same-side takers read differently from one block;
- `ret_<ms>ms_bps`: log return of the mid over each of `return_horizons_ns`, on the sample grid;
- `volatility_bps`: EWMA volatility of the sampled mid, per √second;
- `microprice_depth_bps`: the microprice weighted by the best `depth_levels` levels' total
  sizes instead of the touch's, − mid;
- `ofi_l1_<ms>ms`: Cont, Kukanov & Stoikov's order-flow imbalance at the touch, summed over
  every touch change (each BBO or book event) in the last `ofi_windows_ns`, divided by the
  typical touch size (an EWMA of the sampled mean touch size), so it is scale-free;
- `ofi_depth_<ms>ms`: the multi-level OFI (Xu, Gould & Howison): the same quantity per book
  level 1..`depth_levels`, between consecutive samples, summed over levels and divided by
  the typical size of a level (the touch again without a synced book);
- `queue_log_ratio`: ln(bid size / ask size) at the touch, clipped to ±10;
- `touch_size_rel`, `spread_rel`: the touch's total size and the spread over their EWMAs
  (a thin or wide touch relative to usual).

The touch is whichever of the last BBO and the synced L2 book was updated last: a feed with
both (Binance bookTicker + depth) has the freshest top, a feed with one of them still works.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from models.book import OrderBook
from models.estimators import VolatilityEstimator
from models.events import BBO, BookDelta, BookSnapshot, Level, Trade

NS_PER_S = 1_000_000_000
_BPS = 10_000.0
_ZERO = Decimal(0)

Features = dict[str, float]


class FeatureConfig(msgspec.Struct, frozen=True, kw_only=True):
    depth_levels: int = 5
    trade_window_ns: int = 2 * NS_PER_S
    return_horizons_ns: tuple[int, ...] = (NS_PER_S, 5 * NS_PER_S, 30 * NS_PER_S)
    volatility_half_life_s: float = 30.0
    ofi_windows_ns: tuple[int, ...] = (100_000_000, NS_PER_S)
    # Half-life, in samples, of the typical sizes and spread that scale the OFI and queues.
    scale_half_life_samples: float = 300.0

    def __post_init__(self) -> None:
        if self.depth_levels < 1:
            raise ValueError(f"depth_levels must be >= 1, got {self.depth_levels}")
        if self.trade_window_ns <= 0:
            raise ValueError(f"trade_window_ns must be > 0, got {self.trade_window_ns}")
        if any(h <= 0 for h in self.return_horizons_ns):
            raise ValueError(f"return horizons must be > 0, got {self.return_horizons_ns}")
        if self.volatility_half_life_s <= 0:
            raise ValueError("volatility_half_life_s must be > 0")
        if any(w <= 0 for w in self.ofi_windows_ns):
            raise ValueError(f"OFI windows must be > 0, got {self.ofi_windows_ns}")
        if self.scale_half_life_samples <= 0:
            raise ValueError("scale_half_life_samples must be > 0")


class Touch(msgspec.Struct, frozen=True):
    """Best bid and ask with their sizes, as the venue quoted them."""

    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal


class TradeFlow:
    """Taker buy and sell volume over a sliding time window, kept as exact Decimal sums.

    Exact sums never drift however many trades enter and leave, so an empty window is
    exactly zero rather than a float residue that would read as a flow.
    """

    __slots__ = ("_buy", "_buys", "_sell", "_trades", "window_ns")

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._trades: deque[tuple[int, Decimal, bool]] = deque()
        self._buy = _ZERO
        self._sell = _ZERO
        self._buys = 0  # taker buys in the window, by count

    def add(self, ts: int, size: Decimal, taker_buys: bool) -> None:
        self._trades.append((ts, size, taker_buys))
        if taker_buys:
            self._buy += size
            self._buys += 1
        else:
            self._sell += size

    def imbalance(self, now: int) -> float:
        """(buy − sell) / (buy + sell) over (now − window, now]; 0 with no trades."""
        self._expire(now)
        total = self._buy + self._sell
        return float((self._buy - self._sell) / total) if total else 0.0

    def sign_imbalance(self, now: int) -> float:
        """(buys − sells) / trades over (now − window, now], by count; 0 with no trades."""
        self._expire(now)
        count = len(self._trades)
        return (2 * self._buys - count) / count if count else 0.0

    def _expire(self, now: int) -> None:
        trades, horizon = self._trades, now - self.window_ns
        while trades and trades[0][0] <= horizon:
            _, size, taker_buys = trades.popleft()
            if taker_buys:
                self._buy -= size
                self._buys -= 1
            else:
                self._sell -= size


class MarketFeatures:
    """One instrument's feature state; the caller routes events by instrument.

    `sample` must be called on a fixed grid of `sample_interval_ns` (the return horizons are
    counted in grid steps); `restart` forgets the grid history after a break in the data.
    """

    __slots__ = (
        "_bbo",
        "_book",
        "_book_is_fresher",
        "_depth",
        "_horizon_steps",
        "_mids",
        "_names",
        "_ofi_depth_steps",
        "_ofi_l1_step",
        "_ofi_l1_steps",
        "_ofi_windows",
        "_prev_levels",
        "_prev_touch",
        "_sample_interval_s",
        "_scales",
        "_trade_flow",
        "_volatility",
        "config",
        "symbol",
        "venue",
    )

    def __init__(
        self, venue: str, symbol: str, config: FeatureConfig, sample_interval_ns: int
    ) -> None:
        if sample_interval_ns <= 0:
            raise ValueError(f"sample_interval_ns must be > 0, got {sample_interval_ns}")
        off_grid = [
            h for h in (*config.return_horizons_ns, *config.ofi_windows_ns)
            if h % sample_interval_ns
        ]
        if off_grid:
            raise ValueError(
                f"return horizons / OFI windows {off_grid} are not multiples of the sample "
                f"interval {sample_interval_ns} ns"
            )
        self.venue = venue
        self.symbol = symbol
        self.config = config
        self._depth = config.depth_levels
        self._horizon_steps = [h // sample_interval_ns for h in config.return_horizons_ns]
        self._names = [f"ret_{h // 1_000_000}ms_bps" for h in config.return_horizons_ns]
        self._mids: deque[float] = deque(maxlen=max(self._horizon_steps, default=0) + 1)
        self._sample_interval_s = sample_interval_ns / NS_PER_S
        self._volatility = self._new_volatility()
        self._trade_flow = TradeFlow(config.trade_window_ns)
        self._book: OrderBook | None = None
        self._bbo: BBO | None = None
        self._book_is_fresher = False
        # (name suffix, steps) per OFI window; per-step OFI sums, newest last.
        self._ofi_windows = [
            (f"{w // 1_000_000}ms", w // sample_interval_ns) for w in config.ofi_windows_ns
        ]
        longest = max((steps for _, steps in self._ofi_windows), default=1)
        self._ofi_l1_steps: deque[float] = deque(maxlen=longest)
        self._ofi_depth_steps: deque[float] = deque(maxlen=longest)
        self._ofi_l1_step = 0.0  # touch OFI since the last sample
        self._prev_touch: tuple[float, float, float, float] | None = None
        self._prev_levels: tuple[list[Level], list[Level]] | None = None
        self._scales = _Scales(config.scale_half_life_samples)

    def apply(self, event: object) -> None:
        """Take one market event of this instrument; other event types are ignored."""
        kind = type(event)
        if kind is BBO:
            self._bbo = event
            self._book_is_fresher = False
            self._touch_flow(
                float(event.bid_price), float(event.bid_size),
                float(event.ask_price), float(event.ask_size),
            )
        elif kind is Trade:
            self._trade_flow.add(event.receive_ts, event.size, event.side == "buy")
        elif kind is BookDelta or kind is BookSnapshot:
            book = self._book
            if book is None:
                book = self._book = OrderBook(self.venue, self.symbol)
            book.apply(event)
            self._book_is_fresher = book.synced
            # With a BBO feed the touch flow is the BBO's: mixing two sources of the same
            # touch, updated at different instants, would count their disagreement as flow.
            if self._bbo is None and book.synced:
                bid, ask = book.best_bid(), book.best_ask()
                if bid is not None and ask is not None:
                    self._touch_flow(
                        float(bid[0]), float(bid[1]), float(ask[0]), float(ask[1])
                    )

    def _touch_flow(self, bid: float, bid_size: float, ask: float, ask_size: float) -> None:
        touch = (bid, bid_size, ask, ask_size)
        prev = self._prev_touch
        if prev is not None:
            self._ofi_l1_step += order_flow(*prev, *touch)
        self._prev_touch = touch

    def touch(self) -> Touch | None:
        """The freshest best bid and ask, or None while either side is unknown."""
        book = self._book
        if self._book_is_fresher and book is not None and book.synced:
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None:
                return Touch(bid[0], bid[1], ask[0], ask[1])
        bbo = self._bbo
        if bbo is None:
            return None
        return Touch(bbo.bid_price, bbo.bid_size, bbo.ask_price, bbo.ask_size)

    def sample(self, ts: int, touch: Touch) -> Features:
        """The feature vector at grid instant `ts`, given the touch at that instant."""
        bid, ask = float(touch.bid_price), float(touch.ask_price)
        bid_size, ask_size = float(touch.bid_size), float(touch.ask_size)
        mid = 0.5 * (bid + ask)
        top_size = bid_size + ask_size
        imbalance_l1 = (bid_size - ask_size) / top_size if top_size > 0 else 0.0
        microprice = (ask * bid_size + bid * ask_size) / top_size if top_size > 0 else mid
        levels = self._levels()
        if levels is None:
            depth_imbalance = imbalance_l1
            bid_depth, ask_depth = bid_size, ask_size
        else:
            bid_depth = sum(float(size) for _, size in levels[0])
            ask_depth = sum(float(size) for _, size in levels[1])
            total = bid_depth + ask_depth
            depth_imbalance = (bid_depth - ask_depth) / total if total else 0.0
        depth_total = bid_depth + ask_depth
        microprice_depth = (
            (ask * bid_depth + bid * ask_depth) / depth_total if depth_total > 0 else mid
        )
        spread = ask - bid
        features: Features = {
            "spread_bps": spread / mid * _BPS,
            "imbalance_l1": imbalance_l1,
            "imbalance_depth": depth_imbalance,
            "microprice_bps": (microprice - mid) / mid * _BPS,
            "microprice_depth_bps": (microprice_depth - mid) / mid * _BPS,
            "trade_flow": self._trade_flow.imbalance(ts),
            "trade_sign": self._trade_flow.sign_imbalance(ts),
            "queue_log_ratio": _clipped_log_ratio(bid_size, ask_size),
        }
        self._order_flow_features(features, levels, top_size, spread)
        mids = self._mids
        mids.append(mid)
        log_mid = math.log(mid)
        for name, steps in zip(self._names, self._horizon_steps, strict=True):
            # Until the grid has `steps` past samples the return is unknown: 0 is "no move".
            features[name] = (
                (log_mid - math.log(mids[-1 - steps])) * _BPS if len(mids) > steps else 0.0
            )
        self._volatility.update(ts, mid)
        features["volatility_bps"] = self._volatility.sigma / mid * _BPS
        return features

    def restart(self) -> None:
        """Forget the sampled history: after a gap, returns across it would be meaningless."""
        self._mids.clear()
        self._volatility = self._new_volatility()
        self._ofi_l1_steps.clear()
        self._ofi_depth_steps.clear()
        self._ofi_l1_step = 0.0
        self._prev_levels = None

    def _levels(self) -> tuple[list[Level], list[Level]] | None:
        book = self._book
        if book is None or not book.synced:
            return None
        return book.levels("bid", self._depth), book.levels("ask", self._depth)

    def _order_flow_features(
        self,
        features: Features,
        levels: tuple[list[Level], list[Level]] | None,
        top_size: float,
        spread: float,
    ) -> None:
        """OFI over each window, scale-free queue and spread features; advances the step."""
        scales = self._scales
        scales.update(top_size, spread, levels)
        l1_steps, depth_steps = self._ofi_l1_steps, self._ofi_depth_steps
        l1_steps.append(self._ofi_l1_step)
        self._ofi_l1_step = 0.0
        prev_levels, self._prev_levels = self._prev_levels, levels
        if levels is None or prev_levels is None:
            depth_steps.append(l1_steps[-1] / scales.touch * scales.level)
        else:
            depth_steps.append(_multi_level_flow(prev_levels, levels))
        touch_scale, level_scale = scales.touch, scales.level
        for suffix, steps in self._ofi_windows:
            first = max(len(l1_steps) - steps, 0)
            features[f"ofi_l1_{suffix}"] = (
                sum(l1_steps[i] for i in range(first, len(l1_steps))) / touch_scale
            )
            features[f"ofi_depth_{suffix}"] = (
                sum(depth_steps[i] for i in range(first, len(depth_steps))) / level_scale
            )
        features["touch_size_rel"] = top_size / touch_scale
        features["spread_rel"] = spread / scales.spread if scales.spread > 0 else 1.0

    def _new_volatility(self) -> VolatilityEstimator:
        return VolatilityEstimator(
            interval_s=self._sample_interval_s,
            half_life_s=self.config.volatility_half_life_s,
            min_samples=1,
        )



def order_flow(
    prev_bid: float, prev_bid_size: float, prev_ask: float, prev_ask_size: float,
    bid: float, bid_size: float, ask: float, ask_size: float,
) -> float:
    """Cont, Kukanov & Stoikov's e_n: the net order flow between two states of one level.

    A bid that rises or holds adds its new size, one that falls or holds removes its old
    size (so a held price counts the size change); the ask mirrors it with the opposite sign.

    >>> order_flow(99, 1, 101, 1, 99, 3, 101, 1)   # 2 more bid at the same price
    2.0
    >>> order_flow(99, 1, 101, 1, 100, 2, 101, 1)  # a new, better bid of size 2
    2.0
    >>> order_flow(99, 1, 101, 4, 99, 1, 100, 1)   # a new, better ask of size 1
    -1.0
    """
    flow = 0.0
    if bid >= prev_bid:
        flow += bid_size
    if bid <= prev_bid:
        flow -= prev_bid_size
    if ask <= prev_ask:
        flow -= ask_size
    if ask >= prev_ask:
        flow += prev_ask_size
    return flow


def _multi_level_flow(
    prev: tuple[list[Level], list[Level]], cur: tuple[list[Level], list[Level]]
) -> float:
    """Sum over book levels 1..n of each level's `order_flow` between two samples."""
    total = 0.0
    # Levels present in both samples on both sides; a thin book simply has fewer.
    levels = zip(prev[0], prev[1], cur[0], cur[1], strict=False)
    for (pb, pbs), (pa, pas), (b, bs), (a, as_) in levels:
        total += order_flow(
            float(pb), float(pbs), float(pa), float(pas), float(b), float(bs), float(a),
            float(as_),
        )
    return total


def _clipped_log_ratio(bid_size: float, ask_size: float) -> float:
    if bid_size <= 0 or ask_size <= 0:
        return 10.0 if bid_size > ask_size else -10.0 if ask_size > bid_size else 0.0
    return max(min(math.log(bid_size / ask_size), 10.0), -10.0)


class _Scales:
    """EWMAs of the touch's total size, a book level's size and the spread, over samples.

    They make the OFI and the queue features scale-free; each starts at its first value.
    """

    __slots__ = ("_alpha", "level", "spread", "touch")

    def __init__(self, half_life_samples: float) -> None:
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life_samples)
        self.touch = 0.0
        self.level = 0.0
        self.spread = 0.0

    def update(
        self, top_size: float, spread: float, levels: tuple[list[Level], list[Level]] | None
    ) -> None:
        level = top_size / 2
        if levels is not None and levels[0] and levels[1]:
            sizes = [float(size) for _, size in (*levels[0], *levels[1])]
            level = sum(sizes) / len(sizes)
        alpha = self._alpha
        for name, value in (("touch", top_size), ("level", level), ("spread", spread)):
            old = getattr(self, name)
            setattr(self, name, value if old <= 0 else old + alpha * (value - old))
        # Guard the divisions: a zero-size touch is possible in a broken feed.
        self.touch = self.touch or 1.0
        self.level = self.level or 1.0


class Sample(NamedTuple):
    """The market at one grid instant: `mid_sum` is best bid + best ask (exact)."""

    ts: int
    mid_sum: Decimal
    features: Features
    segment: int  # increases at each break in the data: labels never cross a break


class GridSampler:
    """One instrument's events in, a `Sample` per grid instant of event time out.

    The grid is aligned to multiples of `sample_interval_ns`, so every instrument samples at
    the same instants. Event time is `receive_ts`; events from the past count as "now". The
    state at instant T includes every event stamped ≤ T, so T is sampled when the first later
    event arrives, before that event is applied: a sample never sees anything after its
    instant. A silence longer than `max_gap_ns` is a break: the grid restarts after it (no
    burst of stale samples) and the sampled history is forgotten.
    """

    __slots__ = ("_features", "_interval", "_max_gap_ns", "_next_sample", "segment")

    def __init__(
        self,
        venue: str,
        symbol: str,
        config: FeatureConfig,
        sample_interval_ns: int,
        max_gap_ns: int,
    ) -> None:
        self._features = MarketFeatures(venue, symbol, config, sample_interval_ns)
        self._interval = sample_interval_ns
        self._max_gap_ns = max_gap_ns
        self._next_sample: int | None = None
        self.segment = 0

    def on_event(self, event: Any) -> list[Sample]:
        ts = event.receive_ts
        next_sample = self._next_sample
        out: list[Sample] = []
        if next_sample is None:
            self._next_sample = self._grid_after(ts)
        elif ts > next_sample:
            if ts - next_sample > self._max_gap_ns:
                self._features.restart()
                self.segment += 1
                self._next_sample = self._grid_after(ts)
            else:
                interval = self._interval
                while next_sample < ts:
                    sample = self._sample(next_sample)
                    if sample is not None:
                        out.append(sample)
                    next_sample += interval
                self._next_sample = next_sample
        self._features.apply(event)
        return out

    def _sample(self, ts: int) -> Sample | None:
        features = self._features
        touch = features.touch()
        if touch is None:
            return None
        return Sample(
            ts, touch.bid_price + touch.ask_price, features.sample(ts, touch), self.segment
        )

    def _grid_after(self, ts: int) -> int:
        # The first grid instant at or after ts: the state at ts is complete only after all
        # events stamped ts, which `on_event` guarantees by sampling on a strictly later event.
        return -(-ts // self._interval) * self._interval
