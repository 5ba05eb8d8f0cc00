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
than 38 digits, prices off the 1e-18 grid) and a magnitude of 1e31 or more (the bound
`models.event_bounds` holds every number to, `MAX_DECIMAL_EXPONENT`); its refusal sends the
message the general way, which names the problem. A side of more than `MAX_ITEMS` levels is
left to the bounds check the caller runs on the event (`models.event_bounds` checks a
`Levels`' length as a list's, with the same reason).
"""

from __future__ import annotations

import msgspec

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
        try:
            bid_levels, ask_levels = Levels(raw.bids), Levels(raw.asks)
        except LevelsError:
            return None
        kind = type(raw)
        fields = {name: getattr(raw, name) for name in _OTHER_FIELDS[kind]}
        return _EVENT_OF[kind](bids=bid_levels, asks=ask_levels, **fields)
