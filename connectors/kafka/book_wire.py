"""md.book messages decoded with their levels as `Levels`, not `(Decimal, Decimal)` pairs.

A depth message carries dozens of levels; making two `Decimal`s per level was most of the
live quote flow's decode time (issue 10: 58 µs per md.book message against 15 µs for a
BBO). `Levels` (the compiled book's crate, as the Binance decoder makes them) parses the
same JSON into exact numbers that make their `Decimal`s only when read, and the book takes
its prices from them without any.

A fast path only: `decode` returns None whenever it is not sure to give what the general
decoder (`connectors.kafka.wire`) would accept, and the caller then decodes the message
the general way, which also names what is wrong. So a message decodes to the same event
(levels equal as sequences of pairs, to the exponent) or the same dead letter as before.
`Levels` refuses what is not a quoted decimal (NaN, Infinity, bare numbers, escapes, more
than 38 digits, prices off the 1e-18 grid); what it would take but `models.event_bounds`
refuses (a magnitude of 1e31 or more, more than `MAX_ITEMS` levels) is sent the general way.
"""

from __future__ import annotations

import msgspec

from models.event_bounds import MAX_DECIMAL_EXPONENT, MAX_ITEMS
from models.events import BookDelta, BookSnapshot, Levels, LevelsError


class _RawDelta(BookDelta, tag="book_delta"):
    bids: msgspec.Raw
    asks: msgspec.Raw


class _RawSnapshot(BookSnapshot, tag="book_snapshot"):
    bids: msgspec.Raw
    asks: msgspec.Raw


_EVENT_OF = {_RawDelta: BookDelta, _RawSnapshot: BookSnapshot}
_OTHER_FIELDS = {
    raw: tuple(name for name in raw.__struct_fields__ if name not in ("bids", "asks"))
    for raw in _EVENT_OF
}
# The bounds `Levels` does not check, found in the side's text with digits as "0" and
# exponent marks as "e" (a regex scan costs more than the rest of the decode): a run of
# digits long enough to reach 1e31 (a longer fraction only sends a valid number the general
# way), or an exponent that is not negative (`str(Decimal)` writes a zero size with 8
# places as "0E-8", so negative ones stay).
_MARKS = bytes(
    ord("0") if chr(c).isdigit() and c < 128 else ord("e") if c in b"eE" else c if c == ord("-")
    else ord(" ")
    for c in range(256)
)
_TOO_LONG = b"0" * (MAX_DECIMAL_EXPONENT + 2)


def _out_of_bounds(side: bytes) -> bool:
    marks = side.translate(_MARKS)
    return _TOO_LONG in marks or marks.count(b"e") != marks.count(b"e-")


class BookDecoder:
    """`decode(value)`: the md.book event with `Levels` sides, or None (decode it the
    general way)."""

    __slots__ = ("_decode",)

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder(_RawDelta | _RawSnapshot).decode

    def decode(self, value: bytes) -> BookDelta | BookSnapshot | None:
        try:
            raw = self._decode(value)
        except msgspec.DecodeError:  # ValidationError too: another type, a bad field
            return None
        bids, asks = bytes(raw.bids), bytes(raw.asks)
        if _out_of_bounds(bids) or _out_of_bounds(asks):
            return None
        try:
            bid_levels, ask_levels = Levels(bids), Levels(asks)
        except LevelsError:
            return None
        if len(bid_levels) > MAX_ITEMS or len(ask_levels) > MAX_ITEMS:
            return None
        kind = type(raw)
        fields = {name: getattr(raw, name) for name in _OTHER_FIELDS[kind]}
        return _EVENT_OF[kind](bids=bid_levels, asks=ask_levels, **fields)
