"""The quote flow's side of a lockstep replay: each market event seen when the backtest sees it.

In a backtest (`connectors.paper.trading.PaperTrader`) the session observes a market event,
then gets the fills our side had heard by then, then quotes. On Kafka the fills come from
another process, so where one falls between two market events depends on when each topic
is read. In a lockstep replay the executor says, after matching each market event, that it
has published every fill heard by then (`HeardThrough`, after those fills on
`orders.events`); `LockstepSession` holds each market event until that mark has come, then
replays the backtest's order: observe, the fills since the mark before, quote. After each
event it says so (`QuotedThrough`, after the event's intents on `orders.intents`), which is
what the executor waits for before it matches the next one (docs/paper-venue.md).

>>> from decimal import Decimal
>>> from models.events import BBO, Fill
>>> class Session:
...     def __init__(self): self.seen = []
...     def observe(self, event): self.seen.append(("observe", event.receive_ts)); return True
...     def requote(self, event, changed): self.seen.append(("quote", event.receive_ts)); return []
...     def on_event(self, event): self.seen.append(("fill", event.trade_id)); return []
>>> inner = Session()
>>> session = LockstepSession(inner, "binance", "ETH/USDT")
>>> bbo = BBO(venue="binance", symbol="ETH/USDT", exchange_ts=1, receive_ts=5,
...           bid_price=Decimal(1), bid_size=Decimal(1), ask_price=Decimal(2), ask_size=Decimal(1))
>>> session.on_event(bbo)  # held: the executor has not matched it yet
[]
>>> fill = Fill(venue="binance", symbol="ETH/USDT", ts=4, client_order_id="c", trade_id="t1",
...             side="buy", price=Decimal(1), size=Decimal(1), fee=Decimal(0),
...             fee_currency="USDT", liquidity="maker")
>>> session.on_event(fill)
[]
>>> session.on_event(HeardThrough(venue="binance", symbol="ETH/USDT", receive_ts=5))
[QuotedThrough(v=1, venue='binance', symbol='ETH/USDT', receive_ts=5)]
>>> inner.seen
[('observe', 5), ('fill', 't1'), ('quote', 5)]
"""

from __future__ import annotations

from collections import deque
from typing import Any

from models.events import (
    BBO,
    BookDelta,
    BookSnapshot,
    Event,
    Fill,
    HeardThrough,
    QuotedThrough,
    Trade,
)

_MARKET = (BookDelta, BookSnapshot, BBO, Trade)


class LockstepError(RuntimeError):
    """The executor's marks and the market data disagree: the two processes are not
    replaying the same market (another prefix, or md.* written to meanwhile)."""


class LockstepSession:
    """Wraps one instrument's quote session (`observe`/`requote`/`on_event`, as
    `models.quote_session.QuoteSession`; a session without `observe` gets the fills before
    the event instead)."""

    __slots__ = ("_fills", "_market", "_marks", "session", "symbol", "venue")

    def __init__(self, session: Any, venue: str, symbol: str):
        self.session = session
        self.venue, self.symbol = venue, symbol
        self._market: deque[Event] = deque()  # market events not seen yet
        self._marks: deque[tuple[int, list[Fill]]] = deque()  # (receive_ts, fills before it)
        self._fills: list[Fill] = []  # fills since the last mark

    def on_event(self, event: Event) -> list[Event]:
        kind = type(event)
        if kind in _MARKET:
            self._market.append(event)
        elif kind is Fill:
            self._fills.append(event)  # type: ignore[arg-type]
        elif kind is HeardThrough:
            self._marks.append((event.receive_ts, self._fills))  # type: ignore[attr-defined]
            self._fills = []
        else:
            return self.session.on_event(event)  # predictions, controls: as they come
        return self._release()

    def close(self) -> list[Event]:
        return self.session.close()

    def _release(self) -> list[Event]:
        out: list[Event] = []
        market, marks, session = self._market, self._marks, self.session
        while market and marks:
            event = market.popleft()
            heard_ts, fills = marks.popleft()
            if heard_ts != event.receive_ts:  # type: ignore[attr-defined]
                raise LockstepError(
                    f"{self.venue}:{self.symbol}: the executor matched the market event "
                    f"received at {heard_ts}, the quote flow's next is at {event.receive_ts}"  # type: ignore[attr-defined]
                )
            if hasattr(session, "observe"):
                changed = session.observe(event)
                for fill in fills:
                    session.on_event(fill)
                out.extend(session.requote(event, changed))
            else:
                for fill in fills:
                    out.extend(session.on_event(fill))
                out.extend(session.on_event(event))
            out.append(QuotedThrough(venue=self.venue, symbol=self.symbol,
                                     receive_ts=event.receive_ts))  # type: ignore[attr-defined]
        return out


class LockstepSessions:
    """key → `LockstepSession` around `sessions(key)` (`flows.quote`'s `new_session`)."""

    def __init__(self, sessions: Any):
        self._sessions = sessions

    def __call__(self, key: str) -> LockstepSession:
        venue, symbol = key.split(":", 1)
        return LockstepSession(self._sessions(key), venue, symbol)
