"""A simulated exchange on the exchange clock, shaped like a ccxt exchange.

Two clocks, as in hftbacktest: the *exchange* clock is the exchange time of the market
events the venue is shown (the matching engine's time), the *local* clock is their receive
time (when our side hears of them). The two clocks can be offset: a recorder's clock may run
behind the exchange's (1.27 s in the shared Binance files), so local time t is exchange time
`t + offset`, where `offset` is the largest lead of exchange over receive time seen so far
(never below 0; hftbacktest shifts its local timestamps by the same amount). A request sent
at local time t reaches the matching engine at `max(t + offset, exchange now) + latency`
(entry latency for creates and amends, cancel latency for cancels, plus any wait the rate
limiter imposed) and takes effect just before the first market event whose exchange time is
later: so an order is only ever filled by market activity after it arrived
(docs/paper-venue.md). Whatever the engine does at exchange time x (acks, fills, cancels) is
heard at local time `x + response latency - offset`, in order.

Matching uses the freshest touch the caller shows (`models.fresh_book.FreshBook`), the queue
model of the caller's choice (`models.queue_model`, risk-averse by default), and never uses
the same market volume twice: one print's volume is shared out once among our orders, and a
level crossing our price fills us with no more than its size, once. Synchronous rejects
raise ccxt's own exceptions.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

import ccxt

from connectors.paper.balances import Balances, holding, max_fee_rate
from connectors.paper.matching import DEPTH_GROWTH, FIRST_DEPTH, crosses, walk
from connectors.paper.orders import (
    CANCELED,
    CLOSED,
    NS_PER_MS,
    OPEN,
    REJECTED,
    PaperOrder,
    ccxt_trade,
)
from models.book import BookStatus, ticks
from models.book_view import BookView, TopOfBook
from models.events import (
    BBO,
    AnyMarketEvent,
    BookDelta,
    Fill,
    OrderEvent,
    OrderEventKind,
    Side,
    Trade,
    exchange_time,
)
from models.instrument import Instrument, InstrumentRuleError
from models.latency import DEFAULT_LATENCY_MS, ConstantLatency, LatencyModel
from models.queue_model import QueueFactory, RiskAverseQueue

ZERO = Decimal(0)
TIME_IN_FORCE = ("GTC", "IOC", "PO")

_APPLIED = BookStatus.APPLIED  # a module global: the enum's class attribute costs ~0.1 µs

# A symbol whose market the venue has not seen yet trades against an empty book.
_NO_MARKET = TopOfBook()

_CREATE, _CANCEL, _AMEND = "create", "cancel", "amend"


class PaperVenue:
    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        latency: LatencyModel | None = None,
        queue_model: QueueFactory = RiskAverseQueue,
        partial_fills: bool = True,
        balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        self._instruments: dict[str, Instrument] = {}
        for instrument in instruments:
            if instrument.symbol in self._instruments:
                raise ValueError(f"two instruments for {instrument.symbol}: one per symbol")
            self._instruments[instrument.symbol] = instrument
        self.latency = latency if latency is not None else DEFAULT_LATENCY
        self._queue = queue_model
        # Without partial fills an order that is reached fills whole, as in hftbacktest's
        # NoPartialFillExchange (used to compare with it); with them, by the volume that reached it.
        self.partial_fills = partial_fills
        self._balances = Balances(balances)
        self._local_now = 0
        self._exchange_now = 0
        # Exchange clock minus local clock: the largest lead of an event's exchange time over
        # its receive time so far. Without it, every answer of a venue whose clock runs ahead
        # of the recorder's would be heard that much late (1.27 s on the shared recordings).
        self._clock_offset = 0
        self._orders: dict[str, PaperOrder] = {}
        self._by_client_id: dict[str, PaperOrder] = {}
        self._live: dict[str, PaperOrder] = {}
        # Arrived open orders per symbol and side, in matching priority (price, then arrival).
        self._resting: dict[str, dict[Side, list[PaperOrder]]] = {
            symbol: {"buy": [], "sell": []} for symbol in self._instruments
        }
        # Crossing volume already used per symbol, by (book side, price): a level that stays
        # through our price over several book events fills us once, not at every event.
        self._crossing_used: dict[str, dict[tuple[str, Decimal], Decimal]] = {
            symbol: {} for symbol in self._instruments
        }
        self._books: dict[str, BookView] = {}
        # Symbols whose resting orders changed (arrived, amended, traded) since their book was
        # last matched: after a match, matching the same book again changes nothing.
        self._rematch: set[str] = set()
        # Requests in flight, by arrival time at the matching engine (then sending order).
        self._requests: list[
            tuple[int, int, str, PaperOrder, Decimal | None, Decimal | None, int | None]
        ] = []
        self._sent = 0
        # What the engine did, with the local time we hear of it; kept in order (one link).
        self._outbox: deque[tuple[int, OrderEvent | Fill]] = deque()
        self._last_heard = 0
        self._engine_ts = 0  # the exchange time of what the engine is doing now
        self._cause: tuple[str, int] = ("arrival", 0)
        self._my_trades: list[Fill] = []
        self._order_ids = 0
        self._trade_ids = 0
        self._arrivals = 0

    @property
    def now_ns(self) -> int:
        """The local clock: the receive time of the latest market event (or timer)."""
        return self._local_now

    @property
    def in_flight(self) -> int:
        """Requests sent that have not reached the matching engine yet, and responses not
        heard yet: what only the passing of market time brings."""
        return len(self._requests) + len(self._outbox)

    def local_now(self) -> int:
        """`now_ns` as a callable: the clock of the executor and rate limiter beside it."""
        return self._local_now

    @property
    def exchange_now_ns(self) -> int:
        """The exchange clock: the latest exchange time the venue has processed."""
        return self._exchange_now

    # -- the clocks -----------------------------------------------------------------------------

    def advance_exchange(self, exchange_ts: int) -> None:
        """Deliver every request that reaches the engine before `exchange_ts`.

        Call it before the book shows the event at `exchange_ts`: the requests then meet the
        book as it was when they arrived. (`on_market_event` calls it too, for callers that
        update the book first.)
        """
        requests = self._requests
        while requests and requests[0][0] < exchange_ts:
            arrival, _, action, order, price, size, trigger = heapq.heappop(requests)
            self._engine_ts = arrival
            self._cause = ("arrival", arrival)
            book = self._books.get(order.instrument.symbol, _NO_MARKET)
            if action == _CREATE:
                self._arrive(order, book)
            elif action == _CANCEL:
                self._arrive_cancel(order)
            else:
                self._arrive_amend(order, price, size, book, trigger)
        if exchange_ts > self._exchange_now:
            self._exchange_now = exchange_ts

    def advance_local(self, local_ts: int) -> list[OrderEvent | Fill]:
        """Move the local clock (a timer, no market event); what we hear by then."""
        if local_ts > self._local_now:
            self._local_now = local_ts
        return self._heard()

    def finish(self) -> list[OrderEvent | Fill]:
        """The market has ended: every request in flight arrives, everything is heard."""
        if self._requests:
            self.advance_exchange(max(arrival for arrival, *_ in self._requests) + 1)
        heard = [event for _, event in self._outbox]
        self._outbox.clear()
        if heard:
            self._local_now = max(self._local_now, self._last_heard)
        return heard

    def _heard(self) -> list[OrderEvent | Fill]:
        outbox, now = self._outbox, self._local_now
        if not outbox or outbox[0][0] > now:
            return []
        heard = []
        while outbox and outbox[0][0] <= now:
            heard.append(outbox.popleft()[1])
        return heard

    # -- market data --------------------------------------------------------------------------

    def on_market_event(
        self, event: AnyMarketEvent, book: BookView, *, book_changed: bool = True
    ) -> list[OrderEvent | Fill]:
        """Match the event on the exchange clock; `book` is after the event. Returns what
        our side hears by the event's receive time.

        `book_changed=False` promises `book` is the one shown last, unchanged: resting orders
        are then matched only if they changed since.
        """
        exchange_ts = exchange_time(event)
        if exchange_ts - event.receive_ts > self._clock_offset:
            self._clock_offset = exchange_ts - event.receive_ts
        self.advance_exchange(exchange_ts)
        if event.receive_ts > self._local_now:
            self._local_now = event.receive_ts
        symbol = event.symbol
        instrument = self._instruments.get(symbol)
        if instrument is not None and instrument.venue == event.venue:
            self._books[symbol] = book
            # The engine's clock never goes back, though streams' exchange times interleave.
            self._engine_ts = self._exchange_now
            resting = self._resting[symbol]
            if not resting["buy"] and not resting["sell"]:
                self._rematch.discard(symbol)
            elif type(event) is Trade:
                self._cause = ("trade", exchange_ts)
                # The taker's side says whose orders it hit: a sell hits our bids.
                maker_side = "buy" if event.side == "sell" else "sell"
                self._match_trade(event, resting[maker_side])
            elif type(event) is BookDelta and symbol not in self._rematch and (
                book_changed and self._delta_missed_us(symbol, book, resting)
            ):
                self._cause = ("book", exchange_ts)  # what the match would have left
            elif symbol in self._rematch or (
                book_changed and (type(event) is not BBO or getattr(book, "touch_moved", True))
            ):
                self._cause = ("book", exchange_ts)
                self._rematch.discard(symbol)
                self._match_book(symbol, book, resting)
            elif book_changed:
                # Only the sizes at the touch changed (most ticker updates): unless one of our
                # orders is already crossed, only orders at a touch price see a change.
                self._cause = ("book", exchange_ts)
                if not self._touch_sizes(book, resting):
                    self._match_book(symbol, book, resting)
        return self._heard()

    def _match_trade(self, trade: Trade, orders: list[PaperOrder]) -> None:
        # Our own orders share the print: the best-placed one takes its volume first, and
        # no volume is given twice.
        if orders:
            self._rematch.add(trade.symbol)
        left = trade.size
        cause_ts = self._cause[1]
        for order in orders:
            reached = order.queue.on_trade(trade.price, trade.size)
            if not reached or not left or order.arrival_exchange_ts >= cause_ts:
                continue
            size = min(reached, order.remaining, left)
            left -= size
            self._fill(order, order.price, size if self.partial_fills else order.remaining, "maker")
        self._drop_closed(orders)

    def _match_book(
        self, symbol: str, book: BookView, resting: dict[Side, list[PaperOrder]]
    ) -> None:
        used = self._crossing_used[symbol]
        crossed_levels: set[tuple[str, Decimal]] = set()
        for side, orders in resting.items():
            if not orders:
                continue
            if side == "buy":
                book_side, opposite_side = "bid", "ask"
                same, opposite = book.best_bid(), book.best_ask()
            else:
                book_side, opposite_side = "ask", "bid"
                same, opposite = book.best_ask(), book.best_bid()
            crossing: list | None = None
            for order in orders:
                queue = order.queue
                if (
                    opposite is not None and queue.is_crossed_by(opposite[0])
                    and order.arrival_exchange_ts < self._cause[1]
                ):
                    # The market moved through our price: we were the better quote, so we
                    # trade as maker at our own price, by the size that crossed us.
                    if crossing is None:
                        crossing = _crossing_levels(book, opposite_side, orders[0].price, side)
                        crossed_levels.update((opposite_side, price) for price, _ in crossing)
                    self._fill_crossed(order, opposite_side, crossing, used)
                    continue
                size = book.size_at(book_side, order.price)
                if size or same is None or not queue.is_behind(same[0]):
                    queue.on_level_size(size)
            self._drop_closed(orders)
        if len(used) != len(crossed_levels):
            for key in [key for key in used if key not in crossed_levels]:
                del used[key]  # the level no longer crosses: its volume is history

    def _delta_missed_us(
        self, symbol: str, book: BookView, resting: dict[Side, list[PaperOrder]]
    ) -> bool:
        """The depth diff just applied changed nothing `_match_book` reads, so matching
        would repeat the last match's `on_level_size` calls with the same sizes: no-ops.

        Exact when nothing is pending a rematch (the caller's check), the diff was applied
        (levels it does not name are unchanged), both touches kept price and size, no order
        of ours is at or through the opposite touch (no crossing to fill), no crossing volume
        is remembered, and the compiled book changed no level between our lowest and highest
        resting price on our side of it (`OrderBook.changed_within`: ~0.1 µs, in Rust).
        """
        l2 = getattr(book, "l2", None)  # a FreshBook over the compiled book
        if (
            l2 is None or book.last_status is not _APPLIED or not book.touch_kept
            or self._crossing_used[symbol]
        ):
            return False
        # A kept touch is two levels (never None); resting orders are best first.
        bids, asks = resting["buy"], resting["sell"]
        if bids:
            best = bids[0]
            if best.price >= book.ask[0] or l2.changed_within(
                "bid", bids[-1].book_ticks, best.book_ticks
            ):
                return False
        if asks:
            best = asks[0]
            if best.price <= book.bid[0] or l2.changed_within(
                "ask", best.book_ticks, asks[-1].book_ticks
            ):
                return False
        return True

    def _touch_sizes(self, book: BookView, resting: dict[Side, list[PaperOrder]]) -> bool:
        """New sizes at unchanged touch prices; False (nothing done) when an order of ours
        is crossed, so the full match must run."""
        bid, ask = book.best_bid(), book.best_ask()
        bids, asks = resting["buy"], resting["sell"]
        if (bids and ask is not None and bids[0].price >= ask[0]) or (
            asks and bid is not None and asks[0].price <= bid[0]
        ):
            return False
        for orders, touch in ((bids, bid), (asks, ask)):
            if touch is None:
                continue
            price, size = touch
            for order in orders:  # best price first: the touch's orders lead
                if order.price != price:
                    break
                order.queue.on_level_size(size)
        return True

    def _fill_crossed(
        self, order: PaperOrder, opposite_side: str, crossing: list,
        used: dict[tuple[str, Decimal], Decimal],
    ) -> None:
        is_bid = order.side == "buy"
        want = order.remaining
        take = Decimal(0)
        for price, size in crossing:
            if (price > order.price) if is_bid else (price < order.price):
                break
            key = (opposite_side, price)
            already = used.get(key, ZERO)
            if already > size:
                already = used[key] = size  # the level shrank: what left was not ours
            available = size - already
            if not available:
                continue
            part = available if available < want - take else want - take
            used[key] = already + part
            take += part
            if take == want:
                break
        if take and not self.partial_fills:
            take = order.remaining
        if take:
            self._fill(order, order.price, take, "maker")

    # -- ccxt-shaped requests -----------------------------------------------------------------

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        params: dict | None = None,
    ) -> dict:
        return self.place(symbol, type, side, amount, price, params).to_ccxt()

    def place(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        params: dict | None = None,
    ) -> PaperOrder:
        """`create_order` returning the order itself, for in-process callers (the adapter):
        ccxt's structure (dates, trades) costs more than the order."""
        params = params or {}
        client_order_id = params.get("clientOrderId")
        if client_order_id is not None and client_order_id in self._by_client_id:
            return self._by_client_id[client_order_id]
        instrument = self._instrument(symbol)
        trigger = params.get("triggerExchangeTs")
        if type not in ("limit", "market"):
            raise ccxt.InvalidOrder(f"order type {type!r} is not supported: limit or market")
        if side not in ("buy", "sell"):
            raise ccxt.InvalidOrder(f"side {side!r} must be buy or sell")
        time_in_force, post_only = _time_in_force(type, params)
        size = _decimal(amount, "amount")
        limit = _decimal(price, "price") if type == "limit" else None
        if type == "limit" and limit is None:
            raise ccxt.InvalidOrder("a limit order needs a price")
        _validate(instrument, limit, size)
        self._check_funds(instrument, side, limit, size, ZERO)
        self._order_ids += 1
        order_id = str(self._order_ids)
        order = PaperOrder(
            id=order_id,
            client_order_id=client_order_id if client_order_id is not None else f"paper-{order_id}",
            instrument=instrument,
            type=type,
            side=side,
            price=limit,
            amount=size,
            time_in_force=time_in_force,
            post_only=post_only,
            timestamp_ns=self._local_now,
            trigger_exchange_ts=None if trigger is None else int(trigger),
        )
        self._orders[order.id] = order
        self._by_client_id[order.client_order_id] = order
        self._live[order.id] = order
        self._send(_CREATE, order, None, None, params)
        return order

    def cancel_order(self, id: str, symbol: str | None = None, params: dict | None = None) -> dict:
        return self._request_cancel(id, symbol, params).to_ccxt()

    def request_cancel(
        self, id: str, symbol: str | None = None, params: dict | None = None
    ) -> None:
        """`cancel_order` without building ccxt's order structure (see `place`)."""
        self._request_cancel(id, symbol, params)

    def _request_cancel(self, id: str, symbol: str | None, params: dict | None) -> PaperOrder:
        order = self._open_order(id, symbol, params)
        if not order.cancel_pending:
            order.cancel_pending = True
            self._send(_CANCEL, order, None, None, params)
        return order

    def edit_order(
        self,
        id: str,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal | None = None,
        price: Decimal | None = None,
        params: dict | None = None,
    ) -> dict:
        return self.amend(id, symbol, type, side, amount, price, params).to_ccxt()

    def amend(
        self,
        id: str,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal | None = None,
        price: Decimal | None = None,
        params: dict | None = None,
    ) -> PaperOrder:
        """`edit_order` returning the order itself (see `place`)."""
        order = self._open_order(id, symbol, params)
        if type != order.type or side != order.side:
            raise ccxt.InvalidOrder("an amend keeps the order's type and side")
        if order.type != "limit":
            raise ccxt.InvalidOrder("only limit orders can be amended")
        new_size = order.amount if amount is None else _decimal(amount, "amount")
        new_price = order.price if price is None else _decimal(price, "price")
        _validate(order.instrument, new_price, new_size)
        if new_size <= order.filled:
            raise ccxt.InvalidOrder(f"amount {new_size} is not above the filled {order.filled}")
        if self._balances.checked:  # else what the order holds now need not be worked out
            self._check_funds(
                order.instrument,
                order.side,
                new_price,
                new_size - order.filled,
                holding(order.instrument, order.side, order.price, order.remaining)[1],
            )
        self._send(_AMEND, order, new_price, new_size, params)
        return order

    def fetch_order(self, id: str, symbol: str | None = None) -> dict:
        return self._find(id, symbol, None).to_ccxt()

    def fetch_open_orders(self, symbol: str | None = None) -> list[dict]:
        if symbol is not None:
            self._instrument(symbol)
        return [
            order.to_ccxt()
            for order in self._live.values()
            if symbol is None or order.instrument.symbol == symbol
        ]

    def fetch_balance(self) -> dict:
        return self._balances.to_ccxt(self._live.values(), self._local_now)

    def fetch_my_trades(self, symbol: str | None = None) -> list[dict]:
        return [
            ccxt_trade(fill, self._by_client_id[fill.client_order_id])
            for fill in self.my_fills(symbol)
        ]

    def my_fills(self, symbol: str | None = None, since_ns: int = 0) -> list[Fill]:
        """Our fills (`fetch_my_trades` without ccxt's structures), those whose millisecond
        is `since_ns`'s or later: the adapter's answer to a reconciliation, which asks for
        every fill of the run each time."""
        if symbol is not None:
            self._instrument(symbol)
        since_ms = since_ns // NS_PER_MS
        return [
            fill for fill in self._my_trades
            if (symbol is None or fill.symbol == symbol) and fill.ts // NS_PER_MS >= since_ms
        ]

    # -- synchronous checks ---------------------------------------------------------------------

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise ccxt.BadSymbol(f"paper venue does not list {symbol!r}") from None

    def _find(self, id: str, symbol: str | None, params: dict | None) -> PaperOrder:
        """By exchange id, else by client id (as `id` or params' `clientOrderId`)."""
        client_order_id = (params or {}).get("clientOrderId", id)
        order = self._orders.get(id) or self._by_client_id.get(client_order_id)
        if order is None or (symbol is not None and order.instrument.symbol != symbol):
            raise ccxt.OrderNotFound(f"order {id!r} not found")
        return order

    def _open_order(self, id: str, symbol: str | None, params: dict | None) -> PaperOrder:
        order = self._find(id, symbol, params)
        if not order.is_open:
            raise ccxt.OrderNotFound(f"order {id!r} is {order.status}")
        return order

    def _check_funds(
        self, instrument: Instrument, side: str, price: Decimal | None, size: Decimal,
        released: Decimal,
    ) -> None:
        """`released` is what the order being replaced holds already."""
        if not self._balances.checked:
            return
        currency, needed = holding(instrument, side, price, size)
        free = self._balances.free(currency, self._live.values()) + released
        if needed > free:
            raise ccxt.InsufficientFunds(f"needs {needed} {currency}, {free} free")

    # -- requests in flight ---------------------------------------------------------------------

    def _send(
        self, action: str, order: PaperOrder, price: Decimal | None, size: Decimal | None,
        params: dict | None,
    ) -> None:
        """In flight: it reaches the engine after the request's latency, plus whatever the
        caller's rate limiter made it wait (`params["delayNs"]`)."""
        # Now on the exchange clock: never before what the engine has processed already.
        sent = self._local_now + self._clock_offset
        if self._exchange_now > sent:
            sent = self._exchange_now
        latency = self.latency.cancel(sent) if action == _CANCEL else self.latency.entry(sent)
        params = params or {}
        delay = int(params.get("delayNs", 0))
        trigger = params.get("triggerExchangeTs")
        self._sent += 1
        # At least 1 ns: nothing reaches the engine at the very time of what it answers.
        arrival = sent + (latency if latency > 0 else 1) + delay
        heapq.heappush(self._requests, (arrival, self._sent, action, order, price, size, trigger))

    def _arrive(self, order: PaperOrder, book: BookView) -> None:
        if order.type == "market":
            self._arrive_market(order, book)
            return
        order.arrival_exchange_ts = self._engine_ts
        crossing = crosses(order.side, order.price, book)
        if crossing and order.post_only:
            self._reject(order, "POST_ONLY_WOULD_CROSS")
            return
        self._emit(order, "ack")
        self._trade_or_rest(order, book, crossing)

    def _arrive_market(self, order: PaperOrder, book: BookView) -> None:
        order.arrival_exchange_ts = self._engine_ts
        executions = walk(book, order.side, order.amount, None)
        instrument = order.instrument
        minimum = instrument.min_notional
        if executions and instrument.notional(executions[0][0], order.amount) < minimum:
            self._reject(order, "MIN_NOTIONAL")
            return
        if self._balances.checked and order.side == "buy":
            cost = sum((price * size for price, size in executions), ZERO)
            free = self._balances.free(instrument.quote, self._live.values())
            if cost * (1 + max_fee_rate(instrument)) > free:
                self._reject(order, "INSUFFICIENT_FUNDS")
                return
        self._emit(order, "ack")
        for price, size in executions:
            self._fill(order, price, size, "taker")
        if order.is_open:
            self._cancel(order, "NO_LIQUIDITY")

    def _trade_or_rest(self, order: PaperOrder, book: BookView, crossing: bool) -> None:
        if crossing:
            for price, size in walk(book, order.side, order.remaining, order.price):
                self._fill(order, price, size, "taker")
        if not order.is_open:
            return
        if order.time_in_force == "IOC":
            self._cancel(order, "IOC_UNFILLED")
            return
        book_side = "bid" if order.side == "buy" else "ask"
        visible = book.size_at(book_side, order.price)
        order.queue = self._queue(order.side, order.price, visible, order.instrument.step_size)
        order.book_ticks = ticks(order.price)
        self._arrivals += 1
        order.priority = self._arrivals
        symbol = order.instrument.symbol
        insort(self._resting[symbol][order.side], order, key=_matching_priority)
        self._rematch.add(symbol)

    def _arrive_cancel(self, order: PaperOrder) -> None:
        order.cancel_pending = False
        if order.arrival_exchange_ts is None:
            # It overtook its own create (cancels can travel faster): the engine does not
            # know the order yet, so it refuses, and the order arrives and rests later.
            self._emit(order, "reject", "CANCEL_REJECTED: unknown order")
            return
        if order.is_open:
            self._cancel(order, "CANCELED")
        else:
            self._emit(order, "reject", f"CANCEL_REJECTED: order is {order.status}")

    def _arrive_amend(
        self, order: PaperOrder, price: Decimal, size: Decimal, book: BookView,
        trigger: int | None,
    ) -> None:
        if order.arrival_exchange_ts is None:
            self._emit(order, "reject", "AMEND_REJECTED: unknown order")
            return
        if not order.is_open:
            self._emit(order, "reject", f"AMEND_REJECTED: order is {order.status}")
            return
        if size <= order.filled:
            self._emit(order, "reject", f"AMEND_REJECTED: amount {size} is not above filled")
            return
        if price == order.price and size <= order.amount:
            # A smaller order at the same price keeps its place, as on most venues.
            order.amount = size
            order.last_update_ns = self._engine_ts
            self._rematch.add(order.instrument.symbol)
            self._emit(order, "amend")
            return
        crossing = crosses(order.side, price, book)
        if crossing and order.post_only:
            self._emit(order, "reject", "AMEND_REJECTED: POST_ONLY_WOULD_CROSS")
            return
        # A new price or a larger size goes to the back of the queue: it is a new order.
        self._unrest(order)
        order.price = price
        order.amount = size
        order.last_update_ns = self._engine_ts
        order.arrival_exchange_ts = self._engine_ts
        order.trigger_exchange_ts = trigger
        self._emit(order, "amend")
        self._trade_or_rest(order, book, crossing)

    # -- state changes ------------------------------------------------------------------------

    def _fill(self, order: PaperOrder, price: Decimal, size: Decimal, liquidity: str) -> None:
        instrument = order.instrument
        notional = price * size
        fee = instrument.fee(price, size, liquidity)  # in the settlement currency
        order.filled += size
        order.cost += notional
        order.fee += fee
        order.last_update_ns = self._engine_ts
        self._trade_ids += 1
        cause, cause_ts = self._cause
        fill = Fill(
            venue=instrument.venue,
            symbol=instrument.symbol,
            ts=self._engine_ts,
            client_order_id=order.client_order_id,
            trade_id=f"paper-{self._trade_ids}",
            side=order.side,
            price=price,
            size=size,
            fee=fee,
            fee_currency=instrument.fee_currency,
            liquidity=liquidity,
            cause=cause,
            cause_exchange_ts=cause_ts,
            order_trigger_exchange_ts=order.trigger_exchange_ts,
            order_arrival_exchange_ts=order.arrival_exchange_ts,
        )
        order.fills.append(fill)
        self._my_trades.append(fill)
        self._balances.apply_fill(instrument, order.side, price, size, fee)
        if order.remaining:
            self._emit(order, "partial_fill")
        else:
            self._close(order, CLOSED)
            self._emit(order, "fill")
        self._hear(fill)

    def _cancel(self, order: PaperOrder, reason: str) -> None:
        self._unrest(order)
        self._close(order, CANCELED)
        self._emit(order, "cancel", reason)

    def _reject(self, order: PaperOrder, reason: str) -> None:
        self._close(order, REJECTED)
        self._emit(order, "reject", reason)

    def _close(self, order: PaperOrder, status: str) -> None:
        """Callers that hold the order in a resting list drop it from there themselves."""
        order.status = status
        order.last_update_ns = self._engine_ts
        order.queue = None
        self._live.pop(order.id, None)

    def _unrest(self, order: PaperOrder) -> None:
        if order.queue is not None:
            self._resting[order.instrument.symbol][order.side].remove(order)
            order.queue = None

    @staticmethod
    def _drop_closed(orders: list[PaperOrder]) -> None:
        if any(order.status != OPEN for order in orders):
            orders[:] = [order for order in orders if order.status == OPEN]

    def _emit(self, order: PaperOrder, kind: OrderEventKind, reason: str | None = None) -> None:
        instrument = order.instrument
        self._hear(
            OrderEvent(
                venue=instrument.venue,
                symbol=instrument.symbol,
                ts=self._engine_ts,
                kind=kind,
                client_order_id=order.client_order_id,
                exchange_order_id=order.id,
                side=order.side,
                price=order.price,
                size=order.amount,
                filled=order.filled,
                remaining=order.remaining,
                reason=reason,
            )
        )


    def _hear(self, event: OrderEvent | Fill) -> None:
        """Our side hears of it a response latency later, never before what came first."""
        engine_ts = self._engine_ts
        heard = engine_ts + self.latency.response(engine_ts) - self._clock_offset
        if heard < self._last_heard:
            heard = self._last_heard
        self._last_heard = heard
        self._outbox.append((heard, event))


DEFAULT_LATENCY = ConstantLatency.from_ms(
    DEFAULT_LATENCY_MS, DEFAULT_LATENCY_MS, DEFAULT_LATENCY_MS
)


def _crossing_levels(book: BookView, book_side: str, limit: Decimal, side: Side) -> list:
    """The `book_side` levels at or through `limit` (our best price on `side`), best first."""
    depth = FIRST_DEPTH
    while True:
        levels = book.levels(book_side, depth)
        if side == "buy":
            inside = [level for level in levels if level[0] <= limit]
        else:
            inside = [level for level in levels if level[0] >= limit]
        if len(inside) < len(levels) or len(levels) < depth:
            return inside
        depth *= DEPTH_GROWTH


def _matching_priority(order: PaperOrder) -> tuple[Decimal, int]:
    return (-order.price if order.side == "buy" else order.price), order.priority


def _time_in_force(type: str, params: dict) -> tuple[str, bool]:
    post_only = bool(params.get("postOnly", False))
    time_in_force = str(params.get("timeInForce", "IOC" if type == "market" else "GTC")).upper()
    if time_in_force not in TIME_IN_FORCE:
        raise ccxt.InvalidOrder(f"timeInForce {time_in_force!r} is not supported: GTC, IOC, PO")
    post_only = post_only or time_in_force == "PO"
    if post_only and (type == "market" or time_in_force == "IOC"):
        raise ccxt.InvalidOrder("postOnly needs a resting limit order (GTC)")
    return ("PO" if post_only else time_in_force), post_only


def _decimal(value: object, name: str) -> Decimal | None:
    """Numbers from callers: Decimal, int or str exactly; a float through its shortest repr."""
    if type(value) is Decimal and value.is_finite():
        return value  # the executor's orders: exact already, and Decimal(value) equals value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise ccxt.InvalidOrder(f"{name} {value!r} is not a number")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ccxt.InvalidOrder(f"{name} {value!r} is not a number") from None
    if not number.is_finite():
        raise ccxt.InvalidOrder(f"{name} {value!r} is not finite")
    return number


def _validate(instrument: Instrument, price: Decimal | None, size: Decimal | None) -> None:
    if size is None:
        raise ccxt.InvalidOrder("an order needs an amount")
    try:
        instrument.validate(price, size)
    except InstrumentRuleError as error:
        raise ccxt.InvalidOrder(str(error)) from error
