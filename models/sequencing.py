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
- USD-M futures: before the first applied event, drop events with `u < lastUpdateId` and
  require `U <= lastUpdateId <= u`; afterwards each event's `pu` must equal the previous `u`.
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


_RULES_BY_VENUE: dict[str, SequencingRule] = {
    "binance": SourceSequencedRule(BinanceSpotRule()),
    "binanceusdm": SourceSequencedRule(BinanceUsdmRule()),
}


def rule_for_venue(venue: str) -> SequencingRule:
    """The venue's rule; venues whose feeds carry no update ids get `UnsequencedRule`."""
    return _RULES_BY_VENUE.get(venue) or UnsequencedRule()
