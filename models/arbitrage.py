"""Arbitrage signals: the best bid and ask of every instrument of one asset, joined pairwise.

Instruments join an *asset group* `BASE/QUOTE` when their symbol is spot (`BTC/USDT`) or a
linear perpetual settled in its quote currency (`BTC/USDT:USDT`); quotes are compared only
within a group, so by default USD and USDT never meet (`ArbitrageConfig.quote_aliases` can
merge them). Every two instruments of a group form a pair, `spot_perp` when one leg is spot
and the other a perpetual, else `cross_venue`; each pair yields both directions:

    buy `size` on A at A's ask, sell it on B at B's bid, pay both legs' taker fees
    gross_edge_bps = 1e4 * (bid_B - ask_A) / ask_A
    net_edge_bps   = 1e4 * (bid_B * (1 - fee_B) - ask_A * (1 + fee_A)) / ask_A
    size           = min(ask size on A, bid size on B)

A leg's top comes from its BBO events; an instrument that only sends L2 (snapshots and
deltas) gets it from a `models.book.OrderBook`, until its first BBO, after which its book
events are ignored. Time is event time: the group's clock is the newest `receive_ts` seen
in it (the one clock all venues share), and a quote older than `max_age_ns` on that clock
is not used. Emission policy: see `ArbitrageConfig`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from models.book import OrderBook
from models.events import BBO, ArbSignal, BookDelta, BookSnapshot, DeadLetter, Event, Trade
from models.instrument import Instrument

# Routing keys for items that belong to no asset group.
DEAD_LETTER_KEY = "dead_letter"
UNROUTABLE_KEY = "unroutable"

SPOT = "spot"
PERP = "perp"
LegKind = Literal["spot", "perp"]

_BPS = 1e4
_NEVER = sys.maxsize


@dataclass(frozen=True, slots=True)
class ArbitrageConfig:
    """What the arbitrage flow joins, how it prices the legs, and when it speaks.

    Fees: an instrument's taker fee comes from `instruments` (by `venue:symbol`), else from
    `venue_taker_fees` (by venue); an instrument with neither is not used (never a guessed fee).

    Emission, per pair, with `best` the higher of its two directions' net edges: both
    directions are emitted when the pair (re)opens (both legs present, valid and fresh), when
    `best` crosses `threshold_bps` (upwards at the threshold, downwards only below
    `threshold_bps - hysteresis_bps`, so a touch flickering at the threshold is quiet), when
    `best` moved by `change_bps` or more since the last emission, and every `heartbeat_ns` of
    event time while the pair stays open (None: no heartbeat), so the topic carries a live
    basis series without repeating every tick.
    """

    max_age_ns: int = 1_000_000_000
    threshold_bps: float = 0.0
    hysteresis_bps: float = 0.5
    change_bps: float = 1.0
    heartbeat_ns: int | None = 1_000_000_000
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    venue_taker_fees: Mapping[str, Decimal] = field(default_factory=dict)
    # Quote currencies treated as the same, e.g. {"USDT": "USD"}: off by default because a
    # stablecoin's own deviation from par is the size of the edges this looks for.
    quote_aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_age_ns <= 0:
            raise ValueError(f"max_age_ns must be > 0, got {self.max_age_ns}")
        if self.hysteresis_bps < 0:
            raise ValueError(f"hysteresis_bps must be >= 0, got {self.hysteresis_bps}")
        if self.change_bps <= 0:
            raise ValueError(f"change_bps must be > 0, got {self.change_bps}")
        if self.heartbeat_ns is not None and self.heartbeat_ns <= 0:
            raise ValueError(f"heartbeat_ns must be > 0 or None, got {self.heartbeat_ns}")
        for venue, fee in self.venue_taker_fees.items():
            _check_fee(f"venue_taker_fees[{venue!r}]", fee)
        for key, instrument in self.instruments.items():
            _check_fee(f"instruments[{key!r}].taker_fee", instrument.taker_fee)

    def taker_fee(self, venue: str, symbol: str) -> Decimal | None:
        instrument = self.instruments.get(f"{venue}:{symbol}")
        if instrument is not None:
            return instrument.taker_fee
        return self.venue_taker_fees.get(venue)


def _check_fee(name: str, fee: Decimal) -> None:
    if not isinstance(fee, Decimal) or not 0 <= fee < 1:
        raise ValueError(f"{name} must be a Decimal in [0, 1), got {fee!r}")


def parse_symbol(symbol: str) -> tuple[str, str, LegKind] | None:
    """(base, quote, kind) of a spot or linear-perpetual symbol; None for anything else.

    Dated futures (`BTC/USDT:USDT-240927`) and inverse contracts (`BTC/USD:BTC`, sized in
    contracts of quote value) are not comparable touch for touch, so they are left out.
    """
    base, slash, rest = symbol.partition("/")
    quote, colon, settle = rest.partition(":")
    if not base or not slash or not quote or "/" in rest:
        return None
    if not colon:
        return base, quote, SPOT
    if settle == quote:
        return base, quote, PERP
    return None


class AssetGrouper:
    """Routes items to asset groups; one group's instruments must meet in one state."""

    __slots__ = ("_aliases", "_groups")

    def __init__(self, quote_aliases: Mapping[str, str]):
        self._aliases = dict(quote_aliases)
        self._groups: dict[str, str | None] = {}

    def group(self, symbol: str) -> str | None:
        """`BASE/QUOTE` with the quote after aliases; None when the symbol has no group."""
        try:
            return self._groups[symbol]
        except KeyError:
            parsed = parse_symbol(symbol)
            if parsed is None:
                group = None
            else:
                base, quote, _ = parsed
                group = f"{base}/{self._aliases.get(quote, quote)}"
            self._groups[symbol] = group
            return group

    def route(self, item: object) -> str:
        """The key to partition `item` by: its group, or where dead and unusable items go."""
        if type(item) is DeadLetter:
            return DEAD_LETTER_KEY
        symbol = getattr(item, "symbol", None)
        group = self.group(symbol) if type(symbol) is str else None
        return UNROUTABLE_KEY if group is None else group


class ArbStats:
    """Counts of what the engine did with its input; nothing is dropped uncounted."""

    __slots__ = (
        "bad_quote",
        "bbo",
        "book",
        "dead_letters",
        "ignored",
        "malformed",
        "no_top",
        "signals",
        "stale",
        "unknown_fee",
        "unsupported_symbol",
    )

    def __init__(self) -> None:
        self.bbo = 0  # BBO events that set a leg's top
        self.book = 0  # book events that set a leg's top
        self.ignored = 0  # trades, and book events of legs that have BBOs
        self.bad_quote = 0  # crossed or empty BBOs: the leg is unusable until the next good one
        self.no_top = 0  # book events after which the book had no two-sided top
        self.stale = 0  # pair evaluations skipped because a leg was older than max_age_ns
        self.unsupported_symbol = 0  # events of symbols with no asset group
        self.unknown_fee = 0  # events of instruments with no known taker fee
        self.dead_letters = 0  # passed through untouched
        self.malformed = 0  # items that are not events: dead-lettered with the reason
        self.signals = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"ArbStats({self.as_dict()})"


class _Group:
    __slots__ = ("legs", "now")

    def __init__(self) -> None:
        self.legs: list[_Leg] = []
        self.now = 0  # newest receive_ts seen in the group


class _Leg:
    """One instrument's usable top of book, with floats of the prices for the edge math."""

    __slots__ = (
        "ask",
        "ask_f",
        "ask_size",
        "bid",
        "bid_f",
        "bid_size",
        "book",
        "buy_cost",
        "group",
        "kind",
        "pairs",
        "sell_keep",
        "symbol",
        "ts",
        "uses_bbo",
        "valid",
        "venue",
    )

    def __init__(self, venue: str, symbol: str, kind: LegKind, fee: Decimal, group: _Group):
        self.venue = venue
        self.symbol = symbol
        self.kind = kind
        self.group = group
        self.buy_cost = 1.0 + float(fee)  # quote paid per quote of price when buying as taker
        self.sell_keep = 1.0 - float(fee)  # quote kept per quote of price when selling as taker
        self.book: OrderBook | None = None
        self.uses_bbo = False
        self.valid = False
        self.ts = 0
        self.bid = self.bid_size = self.ask = self.ask_size = Decimal(0)
        self.bid_f = self.ask_f = 0.0
        self.pairs: list[_Pair] = []

    def set_top(self, bid: Decimal, bid_size: Decimal, ask: Decimal, ask_size: Decimal, ts: int):
        self.bid, self.bid_size, self.ask, self.ask_size = bid, bid_size, ask, ask_size
        self.bid_f = float(bid)
        self.ask_f = float(ask)
        self.ts = ts
        self.valid = True


class _Pair:
    """Two legs of one group (in the order they appeared) and what was last said about them."""

    __slots__ = ("a", "above", "b", "kind", "last_best", "last_emit_ts", "open")

    def __init__(self, a: _Leg, b: _Leg):
        self.a = a
        self.b = b
        self.kind = "cross_venue" if a.kind == b.kind else "spot_perp"
        self.open = False  # a signal is in force: both legs were valid and fresh at the last look
        self.above = False  # the last emission was at or above the threshold (with hysteresis)
        self.last_best = 0.0
        self.last_emit_ts = 0


class ArbitrageEngine:
    """Turns market events into `ArbSignal`s; feed it every event of one or more groups.

    `on_event` returns what to publish: signals, dead letters passed through, and dead
    letters for items that are not events at all. Results do not depend on how groups are
    spread over engines: each group keeps its own clock.
    """

    __slots__ = (
        "_change",
        "_config",
        "_grouper",
        "_groups",
        "_heartbeat",
        "_hysteresis",
        "_legs",
        "_max_age",
        "_threshold",
        "stats",
    )

    def __init__(self, config: ArbitrageConfig):
        self._config = config
        self._grouper = AssetGrouper(config.quote_aliases)
        self._max_age = config.max_age_ns
        self._threshold = config.threshold_bps
        self._hysteresis = config.hysteresis_bps
        self._change = config.change_bps
        self._heartbeat = _NEVER if config.heartbeat_ns is None else config.heartbeat_ns
        self._groups: dict[str, _Group] = {}
        # venue -> symbol -> leg, or the stats field to count when the instrument is unusable.
        self._legs: dict[str, dict[str, _Leg | str]] = {}
        self.stats = ArbStats()

    def on_event(self, item: object) -> list[Event]:
        kind = type(item)
        if kind is BBO or kind is BookDelta or kind is BookSnapshot or kind is Trade:
            return self._on_market(item)
        if kind is DeadLetter:
            self.stats.dead_letters += 1
            return [item]
        self.stats.malformed += 1
        return [
            DeadLetter(
                source="arbitrage",
                reason=f"not a market event: {kind.__name__}",
                raw=repr(item),
                receive_ts=None,
            )
        ]

    def close(self) -> list[Event]:
        """Nothing is held back between events, so there is nothing to flush."""
        return []

    # -- per event ---------------------------------------------------------------------------

    def _on_market(self, event: BBO | BookDelta | BookSnapshot | Trade) -> list[Event]:
        leg = self._leg(event.venue, event.symbol)
        if type(leg) is str:
            setattr(self.stats, leg, getattr(self.stats, leg) + 1)
            return []
        now = event.receive_ts
        group = leg.group
        if now > group.now:
            group.now = now
        else:
            now = group.now
        kind = type(event)
        if kind is BBO:
            self._on_bbo(leg, event)
        elif kind is Trade or leg.uses_bbo:
            self.stats.ignored += 1
            return []
        else:
            self._on_book(leg, event)
        out: list[Event] = []
        for pair in leg.pairs:
            self._evaluate(pair, now, out)
        return out

    def _on_bbo(self, leg: _Leg, bbo: BBO) -> None:
        if not leg.uses_bbo:
            leg.uses_bbo = True
            leg.book = None
        bid, ask, bid_size, ask_size = bbo.bid_price, bbo.ask_price, bbo.bid_size, bbo.ask_size
        try:
            usable = 0 < bid < ask and ask.is_finite() and bid_size > 0 and ask_size > 0
        except InvalidOperation:  # NaN
            usable = False
        if usable:
            leg.set_top(bid, bid_size, ask, ask_size, bbo.receive_ts)
            self.stats.bbo += 1
        else:
            leg.valid = False
            self.stats.bad_quote += 1

    def _on_book(self, leg: _Leg, event: BookDelta | BookSnapshot) -> None:
        book = leg.book
        if book is None:
            book = leg.book = OrderBook(leg.venue, leg.symbol)
        # A gap or a crossed book clears the book, which then has no top: the leg goes unused.
        book.apply(event)
        best_bid = book.best_bid()
        best_ask = book.best_ask()
        if best_bid is None or best_ask is None:
            leg.valid = False
            self.stats.no_top += 1
            return
        leg.set_top(best_bid[0], best_bid[1], best_ask[0], best_ask[1], event.receive_ts)
        self.stats.book += 1

    def _evaluate(self, pair: _Pair, now: int, out: list[Event]) -> None:
        a, b = pair.a, pair.b
        if not (a.valid and b.valid):
            pair.open = pair.above = False
            return
        if now - a.ts > self._max_age or now - b.ts > self._max_age:
            pair.open = pair.above = False
            self.stats.stale += 1
            return
        a_to_b = _BPS * (b.bid_f * b.sell_keep / a.ask_f - a.buy_cost)
        b_to_a = _BPS * (a.bid_f * a.sell_keep / b.ask_f - b.buy_cost)
        best = a_to_b if a_to_b > b_to_a else b_to_a
        above = best >= (self._threshold - self._hysteresis if pair.above else self._threshold)
        if (
            pair.open
            and above is pair.above
            and abs(best - pair.last_best) < self._change
            and now - pair.last_emit_ts < self._heartbeat
        ):
            return
        pair.open = True
        pair.above = above
        pair.last_best = best
        pair.last_emit_ts = now
        out.append(_signal(pair.kind, a, b, a_to_b, now))
        out.append(_signal(pair.kind, b, a, b_to_a, now))
        self.stats.signals += 2

    # -- instruments -------------------------------------------------------------------------

    def _leg(self, venue: str, symbol: str) -> _Leg | str:
        by_symbol = self._legs.get(venue)
        if by_symbol is None:
            by_symbol = self._legs[venue] = {}
        leg = by_symbol.get(symbol)
        if leg is None:
            leg = by_symbol[symbol] = self._new_leg(venue, symbol)
        return leg

    def _new_leg(self, venue: str, symbol: str) -> _Leg | str:
        """A leg joined to every leg already in its group, or why the instrument is unusable."""
        parsed = parse_symbol(symbol)
        group_key = self._grouper.group(symbol)
        if parsed is None or group_key is None:
            return "unsupported_symbol"
        fee = self._config.taker_fee(venue, symbol)
        if fee is None:
            return "unknown_fee"
        group = self._groups.get(group_key)
        if group is None:
            group = self._groups[group_key] = _Group()
        leg = _Leg(venue, symbol, parsed[2], fee, group)
        for other in group.legs:
            # Two stablecoin-aliased spot books of one venue are a triangle, not this trade.
            if other.venue == venue and other.kind == leg.kind:
                continue
            pair = _Pair(other, leg)
            other.pairs.append(pair)
            leg.pairs.append(pair)
        group.legs.append(leg)
        return leg


def _signal(kind: str, buy: _Leg, sell: _Leg, net_bps: float, now: int) -> ArbSignal:
    return ArbSignal(
        ts=now,
        kind=kind,
        buy_venue=buy.venue,
        buy_symbol=buy.symbol,
        buy_price=buy.ask,
        sell_venue=sell.venue,
        sell_symbol=sell.symbol,
        sell_price=sell.bid,
        size=min(buy.ask_size, sell.bid_size),
        gross_edge_bps=_BPS * (sell.bid_f / buy.ask_f - 1.0),
        net_edge_bps=net_bps,
        buy_age_ns=now - buy.ts,
        sell_age_ns=now - sell.ts,
    )
