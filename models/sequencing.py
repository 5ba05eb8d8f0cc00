"""Venue rules that decide whether an L2 delta may be applied to a book at a given update id.

Each rule answers one question for `models.book.OrderBook`: given the book's update id (the
snapshot's `lastUpdateId` or the last applied delta's `u`) and whether a delta has been applied
since the snapshot, is this delta applicable, stale (already contained in the book) or a gap
(updates are missing, so the book can no longer be trusted)?

The Binance rules follow Binance's "How to manage a local order book correctly" pages:
- spot: ignore an event whose `u` is not past the book's id; if its `U` is past the book's id + 1
  events were missed; otherwise apply. For the first event after the snapshot this is exactly
  `U <= lastUpdateId + 1 <= u`; afterwards it is normally `U == prev_u + 1`. An event that
  overlaps ids already applied (`U <= prev_u < u`) is applied too, as Binance's procedure
  says: levels carry absolute sizes, so re-setting a level to its newer size is exact.
- futures, USD-M and COIN-M alike: before the first applied event, drop events with
  `u < lastUpdateId` and require `U <= lastUpdateId <= u`; afterwards each event's `pu` must
  equal the previous `u`.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from models.events import BookDelta


class Verdict(Enum):
    APPLY = "apply"
    STALE = "stale"
    GAP = "gap"


APPLY = Verdict.APPLY
STALE = Verdict.STALE
GAP = Verdict.GAP


class SequencingRule(Protocol):
    def check(self, delta: BookDelta, book_seq: int | None, bridged: bool) -> Verdict:
        """`book_seq` is the book's update id, `bridged` whether a delta followed the snapshot."""
        ...


class MissingUpdateIdError(ValueError):
    """A sequenced venue's delta or snapshot without the ids its rule needs: a wiring bug."""


def _require_ids(delta: BookDelta, book_seq: int | None, *names: str) -> None:
    missing = [name for name in names if getattr(delta, name) is None]
    if book_seq is None:
        missing.append("book seq (snapshot lastUpdateId)")
    if missing:
        raise MissingUpdateIdError(f"{delta.venue}:{delta.symbol} delta lacks {', '.join(missing)}")


class BinanceSpotRule:
    __slots__ = ()

    def check(self, delta: BookDelta, book_seq: int | None, bridged: bool) -> Verdict:
        last, first = delta.seq, delta.first_seq
        if last is None or first is None or book_seq is None:
            _require_ids(delta, book_seq, "seq", "first_seq")
        if last <= book_seq:
            return STALE
        return APPLY if first <= book_seq + 1 else GAP


class BinanceUsdmRule:
    __slots__ = ()

    def check(self, delta: BookDelta, book_seq: int | None, bridged: bool) -> Verdict:
        if bridged:
            if delta.prev_seq is None:
                _require_ids(delta, book_seq, "prev_seq")
            return APPLY if delta.prev_seq == book_seq else GAP
        last, first = delta.seq, delta.first_seq
        if last is None or first is None or book_seq is None:
            _require_ids(delta, book_seq, "seq", "first_seq")
        if last < book_seq:
            return STALE
        return APPLY if first <= book_seq else GAP


class UnsequencedRule:
    """For venues without update ids: after a snapshot, deltas apply in arrival order."""

    __slots__ = ()

    def check(self, delta: BookDelta, book_seq: int | None, bridged: bool) -> Verdict:
        return APPLY


class SourceSequencedRule:
    """The venue's rule for deltas that carry update ids; arrival order for those that don't.

    Binance deltas reach us two ways: with their ids (recordings, our own decoder) and without
    (cryptofeed, which checks the sequence itself before it hands a delta on). A delta with
    only some of its ids is still refused by the venue's rule: that is a wiring bug.
    """

    __slots__ = ("venue_rule",)

    def __init__(self, venue_rule: SequencingRule) -> None:
        self.venue_rule = venue_rule

    def check(self, delta: BookDelta, book_seq: int | None, bridged: bool) -> Verdict:
        if delta.first_seq is None and delta.prev_seq is None:
            return APPLY
        return self.venue_rule.check(delta, book_seq, bridged)


class ByUpdateIds:
    """The default when a book's caller names no rule: the ids a delta carries say whose rule
    it follows. Binance futures diffs (USD-M and COIN-M) carry `pu` (prev_seq), spot diffs only
    `U`/`u`, and deltas that cryptofeed already checked carry neither (arrival order).

    Which rule a venue's feed follows is stated by its descriptor (`connectors.venues`, field
    `sequencing`, a key of `RULES`); this default agrees with every descriptor, so books built
    in models without one (features, arbitrage, quote sessions) sequence the same way.
    """

    __slots__ = ()

    def check(self, delta: BookDelta, book_seq: int | None, bridged: bool) -> Verdict:
        if delta.prev_seq is not None:
            return _BINANCE_FUTURES.check(delta, book_seq, bridged)
        if delta.first_seq is not None:
            return _BINANCE_SPOT.check(delta, book_seq, bridged)
        return APPLY


_BINANCE_SPOT = BinanceSpotRule()
_BINANCE_FUTURES = BinanceUsdmRule()

# The rules a venue descriptor can name.
RULES: dict[str, SequencingRule] = {
    "binance-spot": SourceSequencedRule(_BINANCE_SPOT),
    "binance-futures": SourceSequencedRule(_BINANCE_FUTURES),
    "arrival": UnsequencedRule(),
}

DEFAULT_RULE: SequencingRule = ByUpdateIds()


def rule_named(name: str) -> SequencingRule:
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(
            f"no sequencing rule {name!r}; known: {', '.join(RULES)}"
        ) from None
