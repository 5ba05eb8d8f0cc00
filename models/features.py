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
- `ret_<ms>ms_bps`: log return of the mid over each of `return_horizons_ns`, on the sample grid;
- `volatility_bps`: EWMA volatility of the sampled mid, per √second.

The touch is whichever of the last BBO and the synced L2 book was updated last: a feed with
both (Binance bookTicker + depth) has the freshest top, a feed with one of them still works.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal

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

    def __post_init__(self) -> None:
        if self.depth_levels < 1:
            raise ValueError(f"depth_levels must be >= 1, got {self.depth_levels}")
        if self.trade_window_ns <= 0:
            raise ValueError(f"trade_window_ns must be > 0, got {self.trade_window_ns}")
        if any(h <= 0 for h in self.return_horizons_ns):
            raise ValueError(f"return horizons must be > 0, got {self.return_horizons_ns}")
        if self.volatility_half_life_s <= 0:
            raise ValueError("volatility_half_life_s must be > 0")


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

    __slots__ = ("_buy", "_sell", "_trades", "window_ns")

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._trades: deque[tuple[int, Decimal, bool]] = deque()
        self._buy = _ZERO
        self._sell = _ZERO

    def add(self, ts: int, size: Decimal, taker_buys: bool) -> None:
        self._trades.append((ts, size, taker_buys))
        if taker_buys:
            self._buy += size
        else:
            self._sell += size

    def imbalance(self, now: int) -> float:
        """(buy − sell) / (buy + sell) over (now − window, now]; 0 with no trades."""
        trades, horizon = self._trades, now - self.window_ns
        while trades and trades[0][0] <= horizon:
            _, size, taker_buys = trades.popleft()
            if taker_buys:
                self._buy -= size
            else:
                self._sell -= size
        total = self._buy + self._sell
        return float((self._buy - self._sell) / total) if total else 0.0


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
        "_sample_interval_s",
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
        off_grid = [h for h in config.return_horizons_ns if h % sample_interval_ns]
        if off_grid:
            raise ValueError(
                f"return horizons {off_grid} are not multiples of the sample interval "
                f"{sample_interval_ns} ns"
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

    def apply(self, event: object) -> None:
        """Take one market event of this instrument; other event types are ignored."""
        kind = type(event)
        if kind is BBO:
            self._bbo = event
            self._book_is_fresher = False
        elif kind is Trade:
            self._trade_flow.add(event.receive_ts, event.size, event.side == "buy")
        elif kind is BookDelta or kind is BookSnapshot:
            book = self._book
            if book is None:
                book = self._book = OrderBook(self.venue, self.symbol)
            book.apply(event)
            self._book_is_fresher = book.synced

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
        features: Features = {
            "spread_bps": (ask - bid) / mid * _BPS,
            "imbalance_l1": imbalance_l1,
            "imbalance_depth": self._depth_imbalance(imbalance_l1),
            "microprice_bps": (microprice - mid) / mid * _BPS,
            "trade_flow": self._trade_flow.imbalance(ts),
        }
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

    def _new_volatility(self) -> VolatilityEstimator:
        return VolatilityEstimator(
            interval_s=self._sample_interval_s,
            half_life_s=self.config.volatility_half_life_s,
            min_samples=1,
        )

    def _depth_imbalance(self, touch_imbalance: float) -> float:
        book = self._book
        if book is None or not book.synced:
            return touch_imbalance
        bid_depth = _total_size(book.levels("bid", self._depth))
        ask_depth = _total_size(book.levels("ask", self._depth))
        total = bid_depth + ask_depth
        return float((bid_depth - ask_depth) / total) if total else 0.0


def _total_size(levels: list[Level]) -> Decimal:
    return sum((size for _, size in levels), _ZERO)
