"""Post-trade monitors: they measure, and the engine decides what a breach does.

PnL is in the quote currency, per instrument realized + unrealized − fees as the position
ledger reports it (`models.accounting`), summed over instruments. All instruments are
assumed to share one quote currency (USD and its stablecoins counted at par).
"""

from __future__ import annotations

from decimal import Decimal

from models.book_view import BookView
from models.events import Side
from models.risk import reasons

ZERO = Decimal(0)
_BPS = Decimal(10_000)
NS_PER_DAY = 86_400 * 1_000_000_000


class PnlMonitor:
    """Account PnL since the start of the UTC day and below its peak.

    The day's baseline is the total PnL carried over midnight: the last total seen before
    the first update of a new day. PnL counts from the ledgers' zero, so the first day's
    baseline is 0.
    """

    __slots__ = ("_by_instrument", "_day", "day_start", "peak", "total")

    def __init__(self) -> None:
        self._by_instrument: dict[str, Decimal] = {}
        self._day: int | None = None
        self.total = ZERO
        self.day_start = ZERO
        self.peak = ZERO

    def update(self, instrument_key: str, ts_ns: int, pnl: Decimal) -> None:
        day = ts_ns // NS_PER_DAY
        if day != self._day:
            if self._day is not None:
                self.day_start = self.total
            self._day = day
        self.total += pnl - self._by_instrument.get(instrument_key, ZERO)
        self._by_instrument[instrument_key] = pnl
        if self.total > self.peak:
            self.peak = self.total

    @property
    def daily_loss(self) -> Decimal:
        """Positive when the day is losing."""
        return self.day_start - self.total

    @property
    def drawdown(self) -> Decimal:
        return self.peak - self.total


class TakerPriceRejected(Exception):
    def __init__(self, reason_code: str, detail: str):
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code = reason_code
        self.detail = detail


def taker_limit_price(
    book: BookView, side: Side, size: Decimal, max_slippage_bps: Decimal | None, depth: int
) -> Decimal:
    """The worst price needed to fill `size` now, as the limit of an immediate-or-cancel order.

    Walks the opposite side of the book from the touch. Slippage is measured from the touch,
    the price a one-lot order would get. Raises TakerPriceRejected when `depth` levels do
    not hold `size` or when filling it would go more than `max_slippage_bps` past the touch.
    """
    book_side = "ask" if side == "buy" else "bid"
    levels = book.levels(book_side, depth)
    if not levels:
        raise TakerPriceRejected(reasons.INSUFFICIENT_DEPTH, f"no {book_side}s in the book")
    left = size
    worst = levels[0][0]
    for price, available in levels:
        worst = price
        left -= available
        if left <= 0:
            break
    else:
        raise TakerPriceRejected(
            reasons.INSUFFICIENT_DEPTH,
            f"{size - left} of {size} available in the best {len(levels)} {book_side} levels",
        )
    touch = levels[0][0]
    if max_slippage_bps is not None and abs(worst - touch) * _BPS > max_slippage_bps * touch:
        raise TakerPriceRejected(
            reasons.SLIPPAGE,
            f"filling {size} reaches {worst}, more than {max_slippage_bps} bps from {touch}",
        )
    return worst
