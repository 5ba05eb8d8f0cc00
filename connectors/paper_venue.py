"""A simulated exchange on the simulation clock, shaped like a ccxt exchange.

Time is market-event time: the venue's clock is the `receive_ts` of the last market event it
was shown. Requests take effect `market_data_latency_ns + order_latency_ns` after they are
sent (docs/paper-venue.md derives why both latencies add up there), when the market reaches
that time; whatever happens is returned by the next `on_market_event` call as the project's
`OrderEvent`s and `Fill`s. Synchronous rejects raise ccxt's own exceptions.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

import ccxt

from connectors.paper.balances import Balances, holding, max_fee_rate
from connectors.paper.matching import crosses, walk
from connectors.paper.orders import (
    CANCELED,
    CLOSED,
    OPEN,
    REJECTED,
    PaperOrder,
    ccxt_trade,
)
from models.book_view import BookView, TopOfBook
from models.events import AnyMarketEvent, Fill, OrderEvent, OrderEventKind, Side, Trade
from models.instrument import Instrument, InstrumentRuleError
from models.queue_model import QueuePosition

ZERO = Decimal(0)
TIME_IN_FORCE = ("GTC", "IOC", "PO")

# A symbol whose market the venue has not seen yet trades against an empty book.
_NO_MARKET = TopOfBook()

_CREATE, _CANCEL, _AMEND = "create", "cancel", "amend"


class PaperVenue:
    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        order_latency_ns: int = 0,
        market_data_latency_ns: int = 0,
        balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        if order_latency_ns < 0 or market_data_latency_ns < 0:
            raise ValueError("latencies must be >= 0 ns")
        self._instruments: dict[str, Instrument] = {}
        for instrument in instruments:
            if instrument.symbol in self._instruments:
                raise ValueError(f"two instruments for {instrument.symbol}: one per symbol")
            self._instruments[instrument.symbol] = instrument
        self.order_latency_ns = order_latency_ns
        self.market_data_latency_ns = market_data_latency_ns
        self._request_delay_ns = order_latency_ns + market_data_latency_ns
        self._balances = Balances(balances)
        self._now = 0
        self._orders: dict[str, PaperOrder] = {}
        self._by_client_id: dict[str, PaperOrder] = {}
        self._live: dict[str, PaperOrder] = {}
        # Arrived open orders per symbol and side, in matching priority (price, then arrival).
        self._resting: dict[str, dict[Side, list[PaperOrder]]] = {
            symbol: {"buy": [], "sell": []} for symbol in self._instruments
        }
        self._books: dict[str, BookView] = {}
        # Symbols whose resting orders changed (arrived, amended, traded) since their book was
        # last matched: after a match, matching the same book again changes nothing.
        self._rematch: set[str] = set()
        # One constant delay keeps arrivals in sending order, so a FIFO is a time queue.
        self._requests: deque[tuple[int, str, PaperOrder, Decimal | None, Decimal | None]] = (
            deque()
        )
        self._outbox: list[OrderEvent | Fill] = []
        self._my_trades: list[Fill] = []
        self._order_ids = 0
        self._trade_ids = 0
        self._arrivals = 0

    @property
    def now_ns(self) -> int:
        """The venue's clock: the receive time of the latest market event."""
        return self._now

    # -- market data --------------------------------------------------------------------------

    def on_market_event(
        self, event: AnyMarketEvent, book: BookView, *, book_changed: bool = True
    ) -> list[OrderEvent | Fill]:
        """Advance to the event, deliver arrived requests, match; `book` is after the event.

        `book_changed=False` promises `book` is the one shown last, unchanged (a BBO beside
        an L2 book): resting orders are then matched only if they changed since.
        """
        if event.receive_ts > self._now:
            self._now = event.receive_ts
        symbol = event.symbol
        instrument = self._instruments.get(symbol)
        if instrument is not None and instrument.venue == event.venue:
            self._books[symbol] = book
            self._deliver_due()
            resting = self._resting[symbol]
            if type(event) is Trade:
                # The taker's side says whose orders it hit: a sell hits our bids.
                maker_side = "buy" if event.side == "sell" else "sell"
                self._match_trade(event, resting[maker_side])
            elif book_changed or symbol in self._rematch:
                self._rematch.discard(symbol)
                self._match_book(book, resting)
        else:
            self._deliver_due()
        out, self._outbox = self._outbox, []
        return out

    def _match_trade(self, trade: Trade, orders: list[PaperOrder]) -> None:
        # Our own orders share the print: the best-placed one takes its volume first.
        if orders:
            self._rematch.add(trade.symbol)
        left = trade.size
        for order in orders:
            reached = order.queue.on_trade(trade.price, trade.size)
            if reached and left:
                size = min(reached, order.remaining, left)
                left -= size
                self._fill(order, order.price, size, "maker")
        self._drop_closed(orders)

    def _match_book(self, book: BookView, resting: dict[Side, list[PaperOrder]]) -> None:
        for side, orders in resting.items():
            if not orders:
                continue
            if side == "buy":
                book_side, same, opposite = "bid", book.best_bid(), book.best_ask()
            else:
                book_side, same, opposite = "ask", book.best_ask(), book.best_bid()
            for order in orders:
                queue = order.queue
                if opposite is not None and queue.is_crossed_by(opposite[0]):
                    # The market moved through our price: we were the better quote, so we
                    # trade as maker at our own price.
                    self._fill(order, order.price, order.remaining, "maker")
                    continue
                size = book.size_at(book_side, order.price)
                if size or same is None or not queue.is_behind(same[0]):
                    queue.on_level_size(size)
            self._drop_closed(orders)

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
        return self._create(symbol, type, side, amount, price, params or {}).to_ccxt()

    def place_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None = None,
        params: dict | None = None,
    ) -> str:
        """`create_order` returning only the order's id, for in-process callers that follow
        their orders through the venue's events: ccxt's structure costs more than the order."""
        return self._create(symbol, type, side, amount, price, params or {}).id

    def _create(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Decimal,
        price: Decimal | None,
        params: dict,
    ) -> PaperOrder:
        client_order_id = params.get("clientOrderId")
        if client_order_id is not None and client_order_id in self._by_client_id:
            return self._by_client_id[client_order_id]
        instrument = self._instrument(symbol)
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
            timestamp_ns=self._now,
        )
        self._orders[order.id] = order
        self._by_client_id[order.client_order_id] = order
        self._live[order.id] = order
        self._send(_CREATE, order, None, None)
        return order

    def cancel_order(self, id: str, symbol: str | None = None, params: dict | None = None) -> dict:
        return self._request_cancel(id, symbol, params).to_ccxt()

    def request_cancel(
        self, id: str, symbol: str | None = None, params: dict | None = None
    ) -> None:
        """`cancel_order` without building ccxt's order structure (see `place_order`)."""
        self._request_cancel(id, symbol, params)

    def _request_cancel(self, id: str, symbol: str | None, params: dict | None) -> PaperOrder:
        order = self._open_order(id, symbol, params)
        if not order.cancel_pending:
            order.cancel_pending = True
            self._send(_CANCEL, order, None, None)
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
        self._check_funds(
            order.instrument,
            order.side,
            new_price,
            new_size - order.filled,
            holding(order.instrument, order.side, order.price, order.remaining)[1],
        )
        self._send(_AMEND, order, new_price, new_size)
        return order.to_ccxt()

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
        return self._balances.to_ccxt(self._live.values(), self._now)

    def fetch_my_trades(self, symbol: str | None = None) -> list[dict]:
        if symbol is not None:
            self._instrument(symbol)
        return [
            ccxt_trade(fill, self._by_client_id[fill.client_order_id])
            for fill in self._my_trades
            if symbol is None or fill.symbol == symbol
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
        self, action: str, order: PaperOrder, price: Decimal | None, size: Decimal | None
    ) -> None:
        self._requests.append((self._now + self._request_delay_ns, action, order, price, size))
        self._deliver_due()

    def _deliver_due(self) -> None:
        requests = self._requests
        while requests and requests[0][0] <= self._now:
            _, action, order, price, size = requests.popleft()
            book = self._books.get(order.instrument.symbol, _NO_MARKET)
            if action == _CREATE:
                self._arrive(order, book)
            elif action == _CANCEL:
                self._arrive_cancel(order)
            else:
                self._arrive_amend(order, price, size, book)

    def _arrive(self, order: PaperOrder, book: BookView) -> None:
        if order.type == "market":
            self._arrive_market(order, book)
            return
        crossing = crosses(order.side, order.price, book)
        if crossing and order.post_only:
            self._reject(order, "POST_ONLY_WOULD_CROSS")
            return
        self._emit(order, "ack")
        self._trade_or_rest(order, book, crossing)

    def _arrive_market(self, order: PaperOrder, book: BookView) -> None:
        executions = walk(book, order.side, order.amount, None)
        instrument = order.instrument
        if executions and executions[0][0] * order.amount < instrument.min_notional:
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
        order.queue = QueuePosition(order.side, order.price, visible, order.instrument.step_size)
        self._arrivals += 1
        order.priority = self._arrivals
        symbol = order.instrument.symbol
        insort(self._resting[symbol][order.side], order, key=_matching_priority)
        self._rematch.add(symbol)

    def _arrive_cancel(self, order: PaperOrder) -> None:
        order.cancel_pending = False
        if order.is_open:
            self._cancel(order, "CANCELED")
        else:
            self._emit(order, "reject", f"CANCEL_REJECTED: order is {order.status}")

    def _arrive_amend(
        self, order: PaperOrder, price: Decimal, size: Decimal, book: BookView
    ) -> None:
        if not order.is_open:
            self._emit(order, "reject", f"AMEND_REJECTED: order is {order.status}")
            return
        if size <= order.filled:
            self._emit(order, "reject", f"AMEND_REJECTED: amount {size} is not above filled")
            return
        if price == order.price and size <= order.amount:
            # A smaller order at the same price keeps its place, as on most venues.
            order.amount = size
            order.last_update_ns = self._now
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
        order.last_update_ns = self._now
        self._emit(order, "amend")
        self._trade_or_rest(order, book, crossing)

    # -- state changes ------------------------------------------------------------------------

    def _fill(self, order: PaperOrder, price: Decimal, size: Decimal, liquidity: str) -> None:
        instrument = order.instrument
        notional = price * size
        fee = notional * (instrument.maker_fee if liquidity == "maker" else instrument.taker_fee)
        order.filled += size
        order.cost += notional
        order.fee += fee
        order.last_update_ns = self._now
        self._trade_ids += 1
        fill = Fill(
            venue=instrument.venue,
            symbol=instrument.symbol,
            ts=self._now,
            client_order_id=order.client_order_id,
            trade_id=f"paper-{self._trade_ids}",
            side=order.side,
            price=price,
            size=size,
            fee=fee,
            fee_currency=instrument.quote,
            liquidity=liquidity,
        )
        order.fills.append(fill)
        self._my_trades.append(fill)
        self._balances.apply_fill(instrument, order.side, price, size, fee)
        if order.remaining:
            self._emit(order, "partial_fill")
        else:
            self._close(order, CLOSED)
            self._emit(order, "fill")
        self._outbox.append(fill)

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
        order.last_update_ns = self._now
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
        self._outbox.append(
            OrderEvent(
                venue=instrument.venue,
                symbol=instrument.symbol,
                ts=self._now,
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
