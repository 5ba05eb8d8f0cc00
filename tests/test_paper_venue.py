"""The paper venue: queue, latency, fill and reject rules, then a replay of real Binance data."""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.paper.venue import PaperVenue
from connectors.venues.market_cache import all_instruments
from models.accounting import PositionLedger
from models.book import OrderBook
from models.book_view import TopOfBook
from models.events import BBO, BookSnapshot, Fill, OrderEvent, Trade
from models.instrument import Instrument
from models.latency import ConstantLatency
from models.queue_model import QueuePosition, parse_queue_model
from tests.conftest import SHARED_DATA

D = Decimal
PERP = all_instruments()["binanceusdm:BTC/USDT:USDT"]  # tick 0.1, step 0.001, min notional 100
SPOT = all_instruments()["binance:BTC/USDT"]
SYMBOL = PERP.symbol


# Requests reach the engine 1 ns after they are sent (the venue's floor) and answers come
# back at once: these tests are about matching rules, not latency (which has its own tests).
INSTANT = ConstantLatency(entry_ns=0, cancel_ns=0, response_ns=0)


def paper(*instruments: Instrument, **kwargs) -> PaperVenue:
    return PaperVenue(list(instruments or [PERP]), **{"latency": INSTANT, **kwargs})


class Market:
    """Drives a venue with hand-made BBO and trade events on a top-of-book view."""

    def __init__(self, venue: PaperVenue, instrument: Instrument = PERP) -> None:
        self.venue = venue
        self.instrument = instrument
        self.book = TopOfBook()
        self.ts = 1_000_000_000

    def bbo(self, bid: str, bid_size: str, ask: str, ask_size: str, *, dt: int = 1_000):
        self.ts += dt
        event = BBO(
            venue=self.instrument.venue, symbol=self.instrument.symbol, exchange_ts=self.ts,
            receive_ts=self.ts, bid_price=D(bid), bid_size=D(bid_size), ask_price=D(ask),
            ask_size=D(ask_size),
        )
        self.venue.advance_exchange(event.exchange_ts)  # arrivals meet the book before it
        self.book.apply(event)
        return self.venue.on_market_event(event, self.book)

    def trade(self, price: str, size: str, taker: str, *, dt: int = 1_000):
        self.ts += dt
        event = Trade(
            venue=self.instrument.venue, symbol=self.instrument.symbol, exchange_ts=self.ts,
            receive_ts=self.ts, price=D(price), size=D(size), side=taker,
        )
        return self.venue.on_market_event(event, self.book)

    def settle(self) -> None:
        """Requests in flight reach the engine now, against the book as it is."""
        self.venue.advance_exchange(max(self.ts, self.venue.exchange_now_ns) + 2)


def kinds(events) -> list[str]:
    return [e.kind if isinstance(e, OrderEvent) else "FILL" for e in events]


def fills(events) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def reasons(events, kind: str) -> list[str | None]:
    return [e.reason for e in events if isinstance(e, OrderEvent) and e.kind == kind]


def queue_ahead(venue: PaperVenue, order_id: str) -> Decimal | None:
    return venue.fetch_order(order_id)["info"]["queue_ahead"]


@pytest.fixture
def market() -> Market:
    m = Market(paper())
    m.bbo("60000.0", "1.000", "60000.1", "2.000")
    return m


def place_bid(market: Market, price="60000.0", size="0.010", **params) -> str:
    order_id = market.venue.create_order(SYMBOL, "limit", "buy", D(size), D(price), params)["id"]
    market.settle()
    return order_id


# -- queue position ---------------------------------------------------------------------------


def test_a_new_order_joins_the_back_of_its_level(market):
    order_id = place_bid(market)
    assert queue_ahead(market.venue, order_id) == D("1.000")
    assert kinds(market.bbo("60000.0", "1.000", "60000.1", "2.000")) == ["ack"]


def test_trades_at_our_price_consume_the_queue_ahead_before_filling_us(market):
    order_id = place_bid(market)
    assert fills(market.trade("60000.0", "0.600", "sell")) == []
    assert queue_ahead(market.venue, order_id) == D("0.400")
    events = market.trade("60000.0", "0.404", "sell")
    assert kinds(events)[-2:] == ["partial_fill", "FILL"]
    (fill,) = fills(events)
    assert (fill.price, fill.size, fill.liquidity) == (D("60000.0"), D("0.004"), "maker")
    assert fill.fee == D("60000.0") * D("0.004") * PERP.maker_fee
    (fill,) = fills(market.trade("60000.0", "1.000", "sell"))
    assert fill.size == D("0.006")
    order = market.venue.fetch_order(order_id)
    assert (order["status"], order["filled"], order["remaining"]) == ("closed", D("0.010"), 0)


def test_buyer_initiated_trades_never_touch_our_bid(market):
    order_id = place_bid(market)
    assert fills(market.trade("60000.0", "5.000", "buy")) == []
    assert queue_ahead(market.venue, order_id) == D("1.000")


def test_risk_averse_cancels_never_move_us_up_and_additions_queue_behind(market):
    order_id = place_bid(market)
    market.bbo("60000.0", "0.500", "60000.1", "2.000")  # half the level cancelled
    assert queue_ahead(market.venue, order_id) == D("0.500")  # only down to what is visible
    market.bbo("60000.0", "2.000", "60000.1", "2.000")  # new orders join behind us
    assert queue_ahead(market.venue, order_id) == D("0.500")
    market.bbo("60000.0", "1.000", "60000.1", "2.000")  # cancels: assumed behind us
    assert queue_ahead(market.venue, order_id) == D("0.500")


def test_power_queue_takes_cancels_by_relative_position():
    """hftbacktest's ProbQueueModel with f(x) = x**n: n = 1 is the pro-rata split."""
    market = Market(paper(queue_model=parse_queue_model("power:1")))
    market.bbo("60000.0", "1.000", "60000.1", "2.000")
    order_id = place_bid(market)
    market.bbo("60000.0", "0.500", "60000.1", "2.000")
    assert queue_ahead(market.venue, order_id) == D("0.500")
    market.bbo("60000.0", "2.000", "60000.1", "2.000")
    assert queue_ahead(market.venue, order_id) == D("0.500")
    market.bbo("60000.0", "1.000", "60000.1", "2.000")  # half of 2.0 cancelled: a quarter of ours
    assert queue_ahead(market.venue, order_id) == D("0.250")


def test_a_decrease_explained_by_trades_is_not_counted_again_as_cancels(market):
    order_id = place_bid(market)
    market.trade("60000.0", "0.300", "sell")
    market.bbo("60000.0", "0.700", "60000.1", "2.000")
    assert queue_ahead(market.venue, order_id) == D("0.700")


def test_a_trade_through_our_price_fills_us_up_to_its_size_whatever_the_queue(market):
    place_bid(market)
    (fill,) = fills(market.trade("59999.9", "0.004", "sell"))
    assert (fill.price, fill.size, fill.liquidity) == (D("60000.0"), D("0.004"), "maker")


def test_the_book_moving_through_our_price_fills_only_what_crossed_and_only_once(market):
    order_id = place_bid(market)
    events = market.bbo("59999.8", "1.000", "60000.0", "0.004")
    (fill,) = fills(events)
    assert (fill.price, fill.size, fill.liquidity) == (D("60000.0"), D("0.004"), "maker")
    assert (fill.cause, fill.cause_exchange_ts) == ("book", market.ts)
    # The same crossing volume seen again is not ours again; more of it is.
    assert fills(market.bbo("59999.8", "1.000", "60000.0", "0.004")) == []
    (fill,) = fills(market.bbo("59999.8", "1.000", "60000.0", "0.010"))
    assert fill.size == D("0.006")
    assert market.venue.fetch_order(order_id)["status"] == "closed"
    assert market.venue.fetch_open_orders() == []


def test_without_partial_fills_a_reached_order_fills_whole():
    """hftbacktest's NoPartialFillExchange, for comparisons with it."""
    market = Market(paper(partial_fills=False))
    market.bbo("60000.0", "1.000", "60000.1", "2.000")
    place_bid(market)
    (fill,) = fills(market.bbo("59999.8", "1.000", "60000.0", "0.001"))
    assert fill.size == D("0.010")


def test_top_of_book_queue_is_zero_away_from_the_touch_and_unseen_behind_it(market):
    away = place_bid(market, price="59990.0")
    assert queue_ahead(market.venue, away) == 0
    touch = place_bid(market)
    market.bbo("60000.1", "3.000", "60000.2", "2.000")  # the touch moved up: our level is unseen
    assert queue_ahead(market.venue, touch) == D("1.000")
    market.bbo("60000.0", "0.400", "60000.1", "2.000")  # back at our price, smaller
    assert queue_ahead(market.venue, touch) == D("0.400")
    market.bbo("59999.9", "1.000", "60000.1", "2.000")  # best bid below us: our level is empty
    assert queue_ahead(market.venue, touch) == 0


def test_our_own_orders_share_a_print_by_price_then_time(market):
    market.bbo("60000.0", "1.000", "60000.5", "2.000")
    first = place_bid(market, size="0.003", clientOrderId="first")
    place_bid(market, size="0.003", clientOrderId="second")
    better = place_bid(market, price="60000.1", size="0.002", clientOrderId="better")
    assert queue_ahead(market.venue, better) == 0 and queue_ahead(market.venue, first) == 1
    sizes = {f.client_order_id: f.size for f in fills(market.trade("59999.0", "0.004", "sell"))}
    assert sizes == {"better": D("0.002"), "first": D("0.002")}


@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=50)), max_size=40
    ),
    start=st.integers(min_value=0, max_value=50),
)
def test_queue_estimate_stays_on_the_size_grid_and_within_the_visible_level(steps, start):
    step = D("0.001")
    queue = QueuePosition("buy", D(100), start * step, step)
    level = start * step
    for is_trade, amount in steps:
        size = amount * step
        if is_trade:
            reached = queue.on_trade(D(100), size)
            assert 0 <= reached <= size and reached % step == 0
        else:
            queue.on_level_size(size)
            level = size
            assert queue.ahead <= level
        assert queue.ahead >= 0 and queue.ahead % step == 0


def test_a_trade_seen_before_the_book_shows_it_is_not_counted_again_as_cancels():
    """The trade print arrives first, an unrelated event shows the old level, then the book
    catches up: the queue ahead shrinks by the traded volume once."""
    queue = QueuePosition("buy", D(100), D("0.010"), D("0.001"))  # 10 ahead
    assert queue.on_trade(D(100), D("0.004")) == 0
    queue.on_level_size(D("0.010"))  # the book has not caught up yet
    queue.on_level_size(D("0.006"))  # now it shows the trade
    assert queue.ahead == D("0.006")


# -- latency ----------------------------------------------------------------------------------


def test_requests_reach_the_engine_after_their_latency_on_the_exchange_clock():
    latency = ConstantLatency(entry_ns=3_000, cancel_ns=1_000, response_ns=2_000)
    market = Market(paper(latency=latency))
    market.bbo("60000.0", "1.000", "60000.1", "2.000")
    sent = market.ts
    order_id = market.venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.0"))["id"]
    assert market.venue.fetch_order(order_id)["info"]["in_flight"]
    # An event at the arrival time itself comes first: the order is there only after it.
    assert market.bbo("60000.0", "1.000", "60000.1", "2.000", dt=3_000) == []
    assert queue_ahead(market.venue, order_id) is None
    market.bbo("60000.0", "1.500", "60000.1", "2.000", dt=1)
    assert queue_ahead(market.venue, order_id) == D("1.000")  # the book as it was at arrival
    # The ack is heard a response latency after the arrival (sent + 3000), not before.
    assert market.bbo("60000.0", "1.500", "60000.1", "2.000", dt=1_998) == []
    (ack,) = market.bbo("60000.0", "1.500", "60000.1", "2.000", dt=1)
    assert (ack.kind, ack.ts) == ("ack", sent + 3_000)
    market.venue.cancel_order(order_id, SYMBOL)
    market.venue.cancel_order(order_id, SYMBOL)  # a repeat while in flight sends nothing
    assert market.bbo("60000.0", "1.500", "60000.1", "2.000", dt=1_000) == []
    market.bbo("60000.0", "1.500", "60000.1", "2.000", dt=1)
    assert market.venue.fetch_order(order_id)["status"] == "canceled"
    events = market.bbo("60000.0", "1.500", "60000.1", "2.000", dt=2_000)
    assert [(e.kind, e.reason) for e in events] == [("cancel", "CANCELED")]


def test_a_recorder_clock_behind_the_exchange_delays_no_answer():
    """Recorded receive times can run behind the exchange's clock (by 1.27 s in the shared
    Binance files). The venue reads that offset from the data: a request still reaches the
    engine after its entry latency on the exchange clock, and its answer is heard one round
    trip after it was sent on ours, not the offset later."""
    lead = 1_000_000_000
    venue = paper(latency=ConstantLatency(entry_ns=3_000, cancel_ns=1_000, response_ns=2_000))
    book = TopOfBook()

    def bbo(received: int, bid_size: str = "1.000"):
        event = BBO(
            venue=PERP.venue, symbol=SYMBOL, exchange_ts=received + lead, receive_ts=received,
            bid_price=D("60000.0"), bid_size=D(bid_size), ask_price=D("60000.1"),
            ask_size=D("2.000"),
        )
        venue.advance_exchange(event.exchange_ts)
        book.apply(event)
        return venue.on_market_event(event, book)

    sent = 5_000_000_000
    bbo(sent)
    order_id = venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.0"))["id"]
    assert bbo(sent + 3_000, "1.500") == []  # at the arrival time itself: the order is not in
    assert queue_ahead(venue, order_id) is None
    assert bbo(sent + 3_001, "1.500") == []
    assert queue_ahead(venue, order_id) == D("1.500")
    assert bbo(sent + 4_999) == []
    (ack,) = bbo(sent + 5_000)
    assert (ack.kind, ack.ts) == ("ack", sent + lead + 3_000)  # stamped on the exchange clock


def test_an_order_is_never_filled_by_prints_from_before_it_arrived():
    """The prints of one taker order share its exchange time: an order sent on the first
    print arrives after it, so the rest of that taker order cannot reach it."""
    market = Market(paper(latency=ConstantLatency(entry_ns=0, cancel_ns=0, response_ns=0)))
    market.bbo("60000.0", "0.000", "60000.1", "2.000")
    market.trade("60000.0", "0.010", "sell")
    market.venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.0"))
    market.ts -= 1_000  # the same taker order's next print, at the same exchange time
    assert fills(market.trade("59999.9", "0.010", "sell")) == []
    (fill,) = fills(market.trade("59999.9", "0.010", "sell"))  # a later taker order
    assert fill.order_arrival_exchange_ts < fill.cause_exchange_ts == market.ts


def test_a_cancel_that_overtakes_its_order_is_refused_and_the_order_rests():
    latency = ConstantLatency(entry_ns=5_000, cancel_ns=1_000, response_ns=0)
    market = Market(paper(latency=latency))
    market.bbo("60000.0", "1.000", "60000.1", "2.000")
    order_id = market.venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.0"))["id"]
    market.venue.cancel_order(order_id, SYMBOL)
    events = market.bbo("60000.0", "1.000", "60000.1", "2.000", dt=2_000)
    assert [(e.kind, e.reason) for e in events] == [("reject", "CANCEL_REJECTED: unknown order")]
    assert kinds(market.bbo("60000.0", "1.000", "60000.1", "2.000", dt=4_000)) == ["ack"]
    assert market.venue.fetch_order(order_id)["status"] == "open"


def test_an_order_can_fill_while_its_cancel_is_in_flight():
    market = Market(paper(latency=ConstantLatency(entry_ns=10_000, cancel_ns=10_000,
                                                  response_ns=0)))
    market.bbo("60000.0", "0.000", "60000.1", "2.000")
    order_id = market.venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.0"))["id"]
    market.bbo("60000.0", "0.000", "60000.1", "2.000", dt=10_001)
    market.venue.cancel_order(order_id, SYMBOL)
    assert kinds(market.trade("60000.0", "0.010", "sell")) == ["fill", "FILL"]
    events = market.bbo("60000.0", "0.000", "60000.1", "2.000", dt=10_001)
    assert [(e.kind, e.reason) for e in events] == [("reject", "CANCEL_REJECTED: order is closed")]
    with pytest.raises(ccxt.OrderNotFound):
        market.venue.cancel_order(order_id, SYMBOL)


# -- order types and rejects ------------------------------------------------------------------


def test_a_client_order_id_is_idempotent(market):
    first = market.venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.0"),
                                      {"clientOrderId": "q-1"})
    again = market.venue.create_order(SYMBOL, "limit", "sell", D("0.020"), D("60001.0"),
                                      {"clientOrderId": "q-1"})
    assert again["id"] == first["id"] and again["side"] == "buy"
    assert len(market.venue.fetch_open_orders(SYMBOL)) == 1
    assert market.venue.fetch_order("q-1")["id"] == first["id"]
    market.settle()
    market.venue.cancel_order("q-1", SYMBOL, {"clientOrderId": "q-1"})
    market.settle()
    assert market.venue.fetch_open_orders() == []


def test_post_only_that_would_cross_is_rejected_on_arrival(market):
    order = market.venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.1"),
                                      {"postOnly": True})
    market.settle()
    order = market.venue.fetch_order(order["id"])
    assert order["status"] == "rejected" and order["timeInForce"] == "PO"
    (event,) = market.bbo("60000.0", "1.000", "60000.1", "2.000")
    assert (event.kind, event.reason) == ("reject", "POST_ONLY_WOULD_CROSS")


@pytest.mark.parametrize(
    ("size", "price", "code"),
    [
        ("0.001", "60000.0", "MIN_NOTIONAL"),
        ("0.0105", "60000.0", "STEP_SIZE"),
        ("0.010", "60000.05", "TICK_SIZE"),
        ("0", "60000.0", "INVALID_SIZE"),
        ("0.010", "-1", "INVALID_PRICE"),
    ],
)
def test_orders_off_the_instrument_rules_raise_invalid_order(market, size, price, code):
    with pytest.raises(ccxt.InvalidOrder, match=code):
        market.venue.create_order(SYMBOL, "limit", "buy", D(size), D(price))
    assert market.venue.fetch_open_orders() == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("ETH/BTC", "limit", "buy", D("1"), D("1")), ccxt.BadSymbol),
        ((SYMBOL, "stop", "buy", D("0.01"), D("60000")), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "long", D("0.01"), D("60000")), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "buy", D("0.01"), None), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "buy", "lots", D("60000")), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "buy", D("0.01"), float("nan")), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "buy", True, D("60000")), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "buy", D("0.01"), D("60000"), {"timeInForce": "FOK"}),
         ccxt.InvalidOrder),
        ((SYMBOL, "market", "buy", D("0.01"), None, {"postOnly": True}), ccxt.InvalidOrder),
        ((SYMBOL, "limit", "buy", D("0.01"), D("60000"), {"postOnly": True, "timeInForce": "IOC"}),
         ccxt.InvalidOrder),
    ],
)
def test_malformed_requests_raise_ccxt_errors(market, args, error):
    with pytest.raises(error):
        market.venue.create_order(*args)


def test_unknown_orders_raise_order_not_found(market):
    with pytest.raises(ccxt.OrderNotFound):
        market.venue.cancel_order("nope")
    with pytest.raises(ccxt.OrderNotFound):
        market.venue.fetch_order("nope")
    order_id = place_bid(market)
    with pytest.raises(ccxt.OrderNotFound):
        market.venue.fetch_order(order_id, "ETH/USDT:USDT")


def test_floats_are_read_through_their_shortest_repr(market):
    order = market.venue.create_order(SYMBOL, "limit", "buy", 0.01, 60000.0)
    assert (order["amount"], order["price"]) == (D("0.01"), D("60000.0"))


def book_with_depth() -> OrderBook:
    book = OrderBook(PERP.venue, SYMBOL)
    book.apply(BookSnapshot(
        venue=PERP.venue, symbol=SYMBOL, exchange_ts=1, receive_ts=1, seq=1,
        bids=[(D("60000.0"), D("1.000")), (D("59999.9"), D("2.000"))],
        asks=[(D("60000.1"), D("0.002")), (D("60000.2"), D("0.003")), (D("60000.5"), D("5.000"))],
    ))
    return book


def clock_event(ts: int) -> Trade:
    # Any event of the instrument moves the clock; a trade far away touches no order.
    return Trade(venue=PERP.venue, symbol=SYMBOL, exchange_ts=ts, receive_ts=ts,
                 price=D("1.0"), size=D("0.001"), side="buy")


def test_market_orders_walk_the_book_and_pay_taker_fees():
    venue, book = paper(), book_with_depth()
    venue.on_market_event(clock_event(10), book)
    order = venue.create_order(SYMBOL, "market", "buy", D("0.007"))
    events = venue.on_market_event(clock_event(12), book)
    executions = [(f.price, f.size, f.liquidity) for f in fills(events)]
    assert executions == [
        (D("60000.1"), D("0.002"), "taker"),
        (D("60000.2"), D("0.003"), "taker"),
        (D("60000.5"), D("0.002"), "taker"),
    ]
    order = venue.fetch_order(order["id"])
    assert order["status"] == "closed"
    assert order["cost"] == sum(price * size for price, size, _ in executions)
    assert order["fee"]["cost"] == order["cost"] * PERP.taker_fee
    assert all(t["takerOrMaker"] == "taker" for t in venue.fetch_my_trades(SYMBOL))


def test_a_crossing_limit_order_takes_up_to_its_price_and_rests_the_rest():
    venue, book = paper(), book_with_depth()
    venue.on_market_event(clock_event(10), book)
    order = venue.create_order(SYMBOL, "limit", "buy", D("0.010"), D("60000.2"))
    ioc = venue.create_order(
        SYMBOL, "limit", "sell", D("1.500"), D("60000.0"), {"timeInForce": "IOC"}
    )
    events = venue.on_market_event(clock_event(12), book)
    order, ioc = venue.fetch_order(order["id"]), venue.fetch_order(ioc["id"])
    assert (order["filled"], order["status"]) == (D("0.005"), "open")
    assert order["info"]["queue_ahead"] == 0
    assert (ioc["filled"], ioc["status"]) == (D("1.000"), "canceled")
    assert reasons(events, "cancel") == ["IOC_UNFILLED"]
    assert {f.cause for f in fills(events)} == {"arrival"}


def test_a_market_order_beyond_the_visible_book_is_cancelled_for_the_rest(market):
    order = market.venue.create_order(SYMBOL, "market", "buy", D("2.500"))
    market.settle()
    order = market.venue.fetch_order(order["id"])
    assert (order["filled"], order["status"]) == (D("2.000"), "canceled")
    events = market.bbo("60000.0", "1.000", "60000.1", "2.000")
    assert reasons(events, "cancel") == ["NO_LIQUIDITY"]


def test_a_market_order_below_min_notional_is_rejected_on_arrival(market):
    order = market.venue.create_order(SYMBOL, "market", "sell", D("0.001"))
    market.settle()
    assert market.venue.fetch_order(order["id"])["status"] == "rejected"


def test_maker_rebates_are_negative_fees_and_taker_fees_positive():
    rebate = Instrument(venue="sim", symbol="SIM/USD", base="SIM", quote="USD",
                        tick_size=D("0.01"), step_size=D("1"), maker_fee=D("-0.0001"),
                        taker_fee=D("0.0005"))
    market = Market(paper(rebate), rebate)
    market.bbo("100.00", "0", "100.01", "10")
    market.venue.create_order("SIM/USD", "limit", "buy", D(10), D("100.00"))
    market.settle()
    (maker,) = fills(market.trade("99.99", "10", "sell"))
    market.bbo("100.00", "10", "100.01", "10")
    market.venue.create_order("SIM/USD", "market", "sell", D(10))
    market.settle()
    (taker,) = fills(market.bbo("100.00", "10", "100.01", "10"))
    assert maker.fee == D("-0.1000") and maker.fee_currency == "USD"
    assert taker.fee == D("0.5000")
    assert market.venue.fetch_balance()["total"] == {"SIM": 0, "USD": D("-0.4")}


# -- amendments -------------------------------------------------------------------------------


def test_a_smaller_amend_keeps_priority_and_a_price_change_loses_it(market):
    order_id = place_bid(market, size="0.020")
    market.trade("60000.0", "0.700", "sell")
    market.venue.edit_order(order_id, SYMBOL, "limit", "buy", D("0.010"))
    market.settle()
    events = market.bbo("60000.0", "0.300", "60000.1", "2.000")
    assert [(e.kind, e.size) for e in events] == [("amend", D("0.010"))]
    assert queue_ahead(market.venue, order_id) == D("0.300")
    market.bbo("60000.0", "0.800", "60000.1", "2.000")
    assert queue_ahead(market.venue, order_id) == D("0.300")
    market.venue.edit_order(order_id, SYMBOL, "limit", "buy", D("0.020"))  # larger: back of queue
    market.settle()
    assert queue_ahead(market.venue, order_id) == D("0.800")


def test_an_amend_to_a_new_price_joins_the_back_of_the_new_level(market):
    order_id = place_bid(market)
    market.venue.edit_order(order_id, SYMBOL, "limit", "buy", price=D("59999.9"))
    market.bbo("60000.0", "1.000", "60000.1", "2.000")
    order = market.venue.fetch_order(order_id)
    assert order["price"] == D("59999.9") and order["info"]["queue_ahead"] == 0  # not visible


def test_a_post_only_amend_that_would_cross_is_rejected_and_the_order_kept(market):
    order_id = place_bid(market, postOnly=True)
    market.venue.edit_order(order_id, SYMBOL, "limit", "buy", price=D("60000.1"))
    events = market.bbo("60000.0", "1.000", "60000.1", "2.000")
    assert [(e.kind, e.reason) for e in events] == [
        ("ack", None), ("reject", "AMEND_REJECTED: POST_ONLY_WOULD_CROSS")]
    order = market.venue.fetch_order(order_id)
    assert order["status"] == "open" and order["price"] == D("60000.0")


def test_an_amend_must_keep_type_side_and_stay_above_filled(market):
    order_id = place_bid(market)
    market.trade("60000.0", "1.004", "sell")
    with pytest.raises(ccxt.InvalidOrder):
        market.venue.edit_order(order_id, SYMBOL, "limit", "sell", D("0.010"))
    with pytest.raises(ccxt.InvalidOrder):
        market.venue.edit_order(order_id, SYMBOL, "limit", "buy", D("0.004"))


# -- cash ---------------------------------------------------------------------------------------


def test_spot_balances_are_checked_and_held_by_open_orders():
    market = Market(paper(SPOT, balances={"USDT": D(1000)}), SPOT)
    market.bbo("60000.00", "1.00000", "60000.01", "1.00000")
    with pytest.raises(ccxt.InsufficientFunds):
        market.venue.create_order(SPOT.symbol, "limit", "sell", D("0.00100"), D("61000.00"))
    market.venue.create_order(SPOT.symbol, "limit", "buy", D("0.01000"), D("60000.00"))
    balance = market.venue.fetch_balance()
    assert balance["USDT"]["used"] == D("600.00") * (1 + SPOT.taker_fee)
    with pytest.raises(ccxt.InsufficientFunds):
        market.venue.create_order(SPOT.symbol, "limit", "buy", D("0.01000"), D("60000.00"))
    order = market.venue.create_order(SPOT.symbol, "market", "buy", D("0.01000"))
    market.settle()
    order = market.venue.fetch_order(order["id"])
    assert order["status"] == "rejected"  # a market buy is checked on arrival
    with pytest.raises(ValueError):
        PaperVenue([SPOT], balances={"USDT": D(-1)})


# -- real data ------------------------------------------------------------------------------------

USDM_BTC = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"


def recorded_top_of_book(path, instrument: Instrument):
    """BBO and trade events from a Binance recording (depth diffs are skipped)."""
    with gzip.open(path, "rt") as lines:
        for line in lines:
            receive_ts, raw = line.split(" ", 1)
            message = json.loads(raw)
            data = message.get("data")
            if data is None:
                continue
            event_type = data["e"]
            common = {"venue": instrument.venue, "symbol": instrument.symbol,
                      "exchange_ts": data["E"] * 1_000_000, "receive_ts": int(receive_ts)}
            if event_type == "bookTicker":
                yield BBO(**common, seq=data["u"], bid_price=D(data["b"]), bid_size=D(data["B"]),
                          ask_price=D(data["a"]), ask_size=D(data["A"]))
            elif event_type == "trade":
                yield Trade(**common, price=D(data["p"]), size=D(data["q"]),
                            side="sell" if data["m"] else "buy", trade_id=str(data["t"]))


@pytest.fixture(scope="module")
def usdm_events(shared_data):
    return list(recorded_top_of_book(USDM_BTC, PERP))


def market_reached(event: BBO | Trade, fill: Fill) -> bool:
    """A maker fill needs a print at or through our price from the other side, or the
    opposite best at our price."""
    if fill.side == "buy":
        if type(event) is Trade:
            return event.side == "sell" and event.price <= fill.price
        return event.ask_price <= fill.price
    if type(event) is Trade:
        return event.side == "buy" and event.price >= fill.price
    return event.bid_price >= fill.price


def test_joining_the_touch_on_real_data_only_fills_when_the_market_reaches_us(usdm_events):
    """A quoter that keeps one bid and one ask at the touch, with 5 ms of order latency."""
    venue = paper(latency=ConstantLatency.from_ms(5, 5, 0))
    book = TopOfBook()
    all_fills = []
    size = D("0.002")
    for event in usdm_events:
        if type(event) is BBO:
            book.apply(event)
        for result in venue.on_market_event(event, book):
            if isinstance(result, Fill):
                all_fills.append(result)
                assert result.cause in ("trade", "book")
                assert result.order_arrival_exchange_ts < result.cause_exchange_ts
                if result.cause_exchange_ts == event.exchange_ts:
                    assert market_reached(event, result)
        if type(event) is BBO and not venue.fetch_open_orders(SYMBOL):
            venue.create_order(SYMBOL, "limit", "buy", size, event.bid_price, {"postOnly": True})
            venue.create_order(SYMBOL, "limit", "sell", size, event.ask_price, {"postOnly": True})
    assert len(all_fills) > 20
    assert {f.liquidity for f in all_fills} == {"maker"}
    assert len({f.trade_id for f in all_fills}) == len(all_fills)
    assert all(f.price % PERP.tick_size == 0 and f.size % PERP.step_size == 0 for f in all_fills)


def test_cash_and_positions_reconcile_after_a_long_random_order_sequence(usdm_events):
    rng = random.Random(20240808)
    venue = paper(latency=ConstantLatency.from_ms(2, 2, 1))
    book = TopOfBook()
    ledger = PositionLedger(PERP)
    seen: list[Fill] = []
    events_by_order: dict[str, list[OrderEvent]] = {}
    def hear(results) -> None:
        for result in results:
            if isinstance(result, Fill):
                seen.append(result)
                ledger.apply(result)
            else:
                events_by_order.setdefault(result.client_order_id, []).append(result)

    for event in usdm_events[:40_000]:
        if type(event) is BBO:
            book.apply(event)
        hear(venue.on_market_event(event, book))
        if type(event) is not BBO or rng.random() > 0.05:
            continue
        open_orders = [o for o in venue.fetch_open_orders(SYMBOL) if o["type"] == "limit"]
        action = rng.random()
        try:
            if action < 0.5 or not open_orders:
                side = rng.choice(("buy", "sell"))
                offset = D(rng.randint(-3, 5)) * PERP.tick_size
                price = event.bid_price - offset if side == "buy" else event.ask_price + offset
                kind = "market" if rng.random() < 0.1 else "limit"
                params = {"postOnly": True} if kind == "limit" and rng.random() < 0.3 else {}
                venue.create_order(SYMBOL, kind, side, D(rng.randint(2, 20)) * PERP.step_size,
                                   price if kind == "limit" else None, params)
            elif action < 0.8:
                venue.cancel_order(rng.choice(open_orders)["id"], SYMBOL)
            else:
                order = rng.choice(open_orders)
                venue.edit_order(order["id"], SYMBOL, "limit", order["side"],
                                 order["amount"] + PERP.step_size * rng.randint(-1, 3),
                                 order["price"] + PERP.tick_size * rng.randint(-2, 2))
        except (ccxt.InvalidOrder, ccxt.InsufficientFunds):
            pass
    hear(venue.finish())
    assert len(seen) > 50 and {f.liquidity for f in seen} == {"maker", "taker"}
    trades = venue.fetch_my_trades(SYMBOL)
    assert [t["id"] for t in trades] == [f.trade_id for f in seen]
    base = sum((f.size if f.side == "buy" else -f.size for f in seen), D(0))
    quote = sum((-f.price * f.size if f.side == "buy" else f.price * f.size for f in seen), D(0))
    fees = sum((f.fee for f in seen), D(0))
    balance = venue.fetch_balance()
    assert balance["total"]["BTC"] == base == ledger.quantity
    assert balance["total"]["USDT"] == quote - fees
    assert ledger.fees == fees
    mark = book.best_bid()[0]
    assert ledger.realized_pnl + ledger.unrealized(mark) - ledger.fees == quote - fees + base * mark
    for client_order_id, order_events in events_by_order.items():
        order = venue.fetch_order(client_order_id)
        own = [f for f in seen if f.client_order_id == client_order_id]
        assert order["filled"] == sum((f.size for f in own), D(0))
        assert order["filled"] <= order["amount"]
        assert order["cost"] == sum((f.price * f.size for f in own), D(0))
        if order["status"] == "open":
            assert order["remaining"] > 0
        last = order_events[-1]
        if order["status"] == "closed":
            assert last.kind in ("fill", "reject")  # a late cancel's reject may follow the fill
