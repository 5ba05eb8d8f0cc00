"""The risk engine on a real Binance USD-M book: every check, the state machine, limits."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import instrument_for
from models.book import OrderBook
from models.events import BookDelta, BookSnapshot, ControlCommand, Position
from models.order_diff import LiveOrder
from models.risk import (
    LimitsError,
    OrderRequest,
    RiskContext,
    RiskEngine,
    TradingState,
    parse_limits,
    taker_limit_price,
)
from models.risk.posttrade import NS_PER_DAY, TakerPriceRejected
from models.risk.state import TradingStates
from tests.conftest import BINANCE_FILES

BTC = instrument_for("binanceusdm", "BTC/USDT:USDT")
ETH = instrument_for("binanceusdm", "ETH/USDT:USDT")
D = Decimal


class RecordedBook(OrderBook):
    """A book that also remembers when its last update was received."""

    receive_ts: int


def replayed_book(instrument, updates: int = 3000) -> RecordedBook:
    """The book of a real recording after `updates` book events."""
    path = next(f for f in BINANCE_FILES if "usdm" in str(f) and instrument.base.lower() in str(f))
    book = RecordedBook(instrument.venue, instrument.symbol)
    seen = 0
    for event in Recordings([path]).events():
        if isinstance(event, BookSnapshot | BookDelta):
            book.apply(event)
            seen += 1
            if seen >= updates and book.synced:
                book.receive_ts = event.receive_ts
                return book
    raise AssertionError("the recording never synced a book")


@pytest.fixture(scope="module")
def btc_book(shared_data):
    return replayed_book(BTC)


@pytest.fixture(scope="module")
def eth_book(shared_data):
    return replayed_book(ETH)


def context(book, *, position="0", orders=(), age_ms=0):
    return RiskContext(
        now_ns=book.receive_ts + age_ms * 1_000_000, mid=book.mid(), book_ts_ns=book.receive_ts,
        position=D(position), open_orders=tuple(orders),
    )


def bid_below(book, ticks=10):
    return book.best_bid()[0] - ticks * BTC.tick_size


def ask_above(book, ticks=10):
    return book.best_ask()[0] + ticks * BTC.tick_size


def buy(price, size="0.01", **kw):
    return OrderRequest(BTC, "buy", D(size), D(price) if price is not None else None, **kw)


def sell(price, size="0.01", **kw):
    return OrderRequest(BTC, "sell", D(size), D(price) if price is not None else None, **kw)


def engine_with(**raw) -> RiskEngine:
    return RiskEngine(parse_limits(raw))


def command(action, target="*", **params):
    return ControlCommand(
        command_id=f"{action}-{target}", ts=1, issued_by="alice", action=action, target=target,
        params={k: str(v) for k, v in params.items()},
    )


def assert_rejected(engine, order, ctx, code):
    decision = engine.check(order, ctx)
    assert (decision.accepted, decision.reason_code) == (False, code), decision
    events = engine.take_events()
    assert [(e.kind, e.reason_code) for e in events] == [("reject", code)]
    assert (events[0].venue, events[0].symbol) == (BTC.venue, BTC.symbol)
    return decision


def assert_accepted(engine, order, ctx):
    decision = engine.check(order, ctx)
    assert decision.accepted, decision
    assert engine.take_events() == []


# -- limits -------------------------------------------------------------------------------


def test_limits_parse_from_toml_and_overrides_follow_defaults():
    raw = tomllib.loads(
        """
        max_total_position = 250000
        max_order_rate = 20
        daily_loss_limit = "1000"
        max_position = 0.5
        price_band_bps = 50
        [instruments."binanceusdm:BTC/USDT:USDT"]
        max_position = "0.1"
        """
    )
    limits = parse_limits(raw)
    assert limits.max_total_position == D("250000") and limits.max_order_rate == 20
    assert limits.for_instrument("binanceusdm:ETH/USDT:USDT").max_position == D("0.5")
    btc = limits.for_instrument(BTC.key)
    assert btc.max_position == D("0.1") and btc.price_band_bps == D("50")
    later = limits.updated("*", {"price_band_bps": "20"})
    assert later.for_instrument(BTC.key).price_band_bps == D("20")
    assert later.for_instrument(BTC.key).max_position == D("0.1")
    assert parse_limits({"max_position": "off"}).defaults.max_position is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_positon": "1"}, "unknown risk limit 'max_positon'"),
        ({"max_position": "-1"}, "max_position must be >= 0"),
        ({"max_order_size": "0"}, "max_order_size must be > 0"),
        ({"max_order_size": True}, "must be a number"),
        ({"max_order_size": "lots"}, "must be a number"),
        ({"max_order_size": "NaN"}, "must be finite"),
        ({"max_order_size": [1]}, "must be a number"),
        ({"max_open_orders": "2.5"}, "whole number"),
        ({"order_rate_window_ms": "off"}, "cannot be turned off"),
        ({"instruments": ["x"]}, "instruments must be a table"),
        ({"instruments": {"binance": {"max_position": 1}}}, "'venue:symbol'"),
        ({"instruments": {BTC.key: {"daily_loss_limit": 1}}}, "not a per-instrument limit"),
        ({"instruments": {BTC.key: 5}}, "must be a table"),
    ],
)
def test_bad_limits_name_the_culprit(raw, message):
    with pytest.raises(LimitsError, match=message):
        parse_limits(raw)


def test_limits_must_be_a_table():
    with pytest.raises(LimitsError, match="table"):
        parse_limits(["max_position"])


# -- pre-trade checks, one by one -------------------------------------------------------------


def test_passing_order_is_accepted_without_events(btc_book):
    engine = engine_with(max_position="1", price_band_bps="100", max_data_age_ms=1000)
    assert_accepted(engine, buy(bid_below(btc_book)), context(btc_book))


def test_malformed_and_off_grid_requests(btc_book):
    engine = RiskEngine()
    ctx = context(btc_book)
    assert_rejected(engine, buy(None), ctx, "INVALID_ORDER")
    assert_rejected(engine, OrderRequest(BTC, "buy", D("0.01"), D(1), kind="market"), ctx,
                    "INVALID_ORDER")
    assert_rejected(engine, buy(bid_below(btc_book) + D("0.01")), ctx, "TICK_SIZE")
    assert_rejected(engine, buy(bid_below(btc_book), size="0.0105"), ctx, "STEP_SIZE")
    assert_rejected(engine, buy(bid_below(btc_book), size="0.001"), ctx, "MIN_NOTIONAL")
    assert_rejected(engine, buy(bid_below(btc_book), size="0"), ctx, "INVALID_SIZE")


def test_stale_or_missing_market_data(btc_book):
    engine = engine_with(max_data_age_ms=500)
    order = buy(bid_below(btc_book))
    assert_accepted(engine, order, context(btc_book, age_ms=500))
    decision = assert_rejected(engine, order, context(btc_book, age_ms=501), "STALE_MARKET_DATA")
    assert "501 ms old" in decision.detail
    no_book = RiskContext(now_ns=0, mid=None, book_ts_ns=None)
    assert_rejected(RiskEngine(), order, no_book, "STALE_MARKET_DATA")


def test_order_size_and_notional(btc_book):
    engine = engine_with(max_order_size="0.05", max_order_notional="2000")
    ctx = context(btc_book)
    assert_rejected(engine, buy(bid_below(btc_book), size="0.06"), ctx, "MAX_ORDER_SIZE")
    assert_rejected(engine, buy(bid_below(btc_book), size="0.04"), ctx, "MAX_ORDER_NOTIONAL")
    assert_accepted(engine, buy(bid_below(btc_book), size="0.03"), ctx)
    market = OrderRequest(BTC, "buy", D("0.04"), kind="market")
    assert_rejected(engine, market, ctx, "MAX_ORDER_NOTIONAL")


def test_price_band_around_the_mid(btc_book):
    engine = engine_with(price_band_bps="10")
    ctx = context(btc_book)
    mid = btc_book.mid()
    inside = BTC.round_price(mid * D("0.9991"), "buy")
    outside = BTC.round_price(mid * D("0.9989"), "buy")
    assert_accepted(engine, buy(inside), ctx)
    decision = assert_rejected(engine, buy(outside), ctx, "PRICE_BAND")
    assert str(mid) in decision.detail
    assert_rejected(engine, sell(BTC.round_price(mid * D("1.0011"), "sell")), ctx, "PRICE_BAND")


def test_self_trade_against_our_own_resting_orders(btc_book):
    engine = RiskEngine()
    ask = ask_above(btc_book)
    orders = [LiveOrder("a1", "sell", ask, D("0.01"))]
    ctx = context(btc_book, orders=orders)
    assert_rejected(engine, buy(ask), ctx, "SELF_TRADE")
    assert_rejected(engine, buy(ask + BTC.tick_size), ctx, "SELF_TRADE")
    assert_accepted(engine, buy(ask - BTC.tick_size), ctx)
    assert_rejected(engine, OrderRequest(BTC, "buy", D("0.01"), kind="market"), ctx, "SELF_TRADE")
    bid = bid_below(btc_book)
    ctx = context(btc_book, orders=[LiveOrder("b1", "buy", bid, D("0.01"))])
    assert_rejected(engine, sell(bid), ctx, "SELF_TRADE")
    assert_accepted(engine, sell(bid + BTC.tick_size), ctx)


def test_minimum_spread_between_our_bid_and_ask(btc_book):
    engine = engine_with(min_spread_bps="2")
    mid = btc_book.mid()
    ask = ask_above(btc_book, 5)
    ctx = context(btc_book, orders=[LiveOrder("a1", "sell", ask, D("0.01"))])
    two_bps = BTC.round_price(mid * D("0.0002"), "sell")
    assert_accepted(engine, buy(ask - two_bps), ctx)
    assert_rejected(engine, buy(ask - two_bps + BTC.tick_size), ctx, "MIN_SPREAD")
    assert_accepted(engine, buy(ask - two_bps), context(btc_book))


def test_max_open_orders(btc_book):
    engine = engine_with(max_open_orders=2)
    bid = bid_below(btc_book)
    one = [LiveOrder("b1", "buy", bid, D("0.01"))]
    assert_accepted(engine, buy(bid), context(btc_book, orders=one))
    two = [*one, LiveOrder("b2", "buy", bid, D("0.01"))]
    assert_rejected(engine, buy(bid), context(btc_book, orders=two), "MAX_OPEN_ORDERS")


def test_max_position_counts_working_orders_on_the_increasing_side(btc_book):
    engine = engine_with(max_position="0.05")
    bid, ask = bid_below(btc_book), ask_above(btc_book)
    working = [LiveOrder("b1", "buy", bid, D("0.02")), LiveOrder("a1", "sell", ask, D("0.5"))]
    ctx = context(btc_book, position=D("0.02"), orders=working)
    assert_accepted(engine, buy(bid, "0.01"), ctx)
    decision = assert_rejected(engine, buy(bid, "0.02"), ctx, "MAX_POSITION")
    assert "0.06" in decision.detail
    # The sells working against a long may take it short: they count for a new sell.
    assert_rejected(engine, sell(ask, "0.01"), ctx, "MAX_POSITION")


def test_reducing_orders_pass_the_position_limits(btc_book):
    engine = engine_with(max_position="0.05", max_total_position="1")
    ask = ask_above(btc_book)
    over = context(btc_book, position=D("0.2"))
    assert_accepted(engine, sell(ask, "0.1"), over)
    assert_rejected(engine, sell(ask, "0.3"), over, "MAX_POSITION")  # flips to −0.1


def test_max_total_position_across_instruments(btc_book, eth_book):
    btc_mid, eth_mid = btc_book.mid(), eth_book.mid()
    engine = engine_with(max_total_position=str(eth_mid + btc_mid * D("0.05")))

    def eth_context(position):
        return RiskContext(
            now_ns=eth_book.receive_ts, mid=eth_mid, book_ts_ns=eth_book.receive_ts,
            position=D(position),
        )

    eth_ask = eth_book.best_ask()[0] + 10 * ETH.tick_size
    # An ETH check records ETH's exposure: 1 ETH long, and the reducing sell is not counted.
    assert engine.check(OrderRequest(ETH, "sell", D("0.1"), eth_ask), eth_context("1")).accepted
    assert_rejected(engine, buy(bid_below(btc_book), "0.051"), context(btc_book),
                    "MAX_TOTAL_POSITION")
    assert_accepted(engine, buy(bid_below(btc_book), "0.05"), context(btc_book))
    # ETH flat again: the room comes back at its next check.
    engine.check(OrderRequest(ETH, "sell", D("0.1"), eth_ask), eth_context("0"))
    engine.take_events()
    assert_accepted(engine, buy(bid_below(btc_book), "0.051"), context(btc_book))


def test_max_order_rate_over_a_rolling_window(btc_book):
    engine = engine_with(max_order_rate=3, order_rate_window_ms=1000)
    order = buy(bid_below(btc_book))
    for _ in range(3):
        assert_accepted(engine, order, context(btc_book))
    assert_rejected(engine, order, context(btc_book, age_ms=999), "MAX_ORDER_RATE")
    assert_accepted(engine, order, context(btc_book, age_ms=1000))


def test_rejected_orders_do_not_count_towards_the_rate(btc_book):
    engine = engine_with(max_order_rate=1, max_order_size="0.01")
    assert_rejected(engine, buy(bid_below(btc_book), "0.02"), context(btc_book), "MAX_ORDER_SIZE")
    assert_accepted(engine, buy(bid_below(btc_book)), context(btc_book))


def test_reduce_only_that_would_not_reduce(btc_book):
    engine = RiskEngine()
    ask = ask_above(btc_book)
    assert_rejected(engine, sell(ask, reduce_only=True), context(btc_book), "REDUCE_ONLY")
    assert_accepted(engine, sell(ask, reduce_only=True), context(btc_book, position=D("0.01")))


# -- trading states -----------------------------------------------------------------------------


def test_halted_accepts_nothing_and_reducing_only_reductions(btc_book):
    engine = RiskEngine()
    ask = ask_above(btc_book)
    assert engine.on_command(command("reduce", BTC.key))
    events = engine.take_events()
    assert [(e.kind, e.reason_code, e.state) for e in events] == [
        ("state_change", "CMD_REDUCE", "REDUCING")]
    long = context(btc_book, position=D("0.02"))
    assert_accepted(engine, sell(ask, "0.02"), long)
    assert_rejected(engine, sell(ask, "0.03"), long, "STATE_REDUCING")
    assert_rejected(engine, buy(bid_below(btc_book)), long, "STATE_REDUCING")
    assert engine.on_command(command("kill"))
    assert engine.take_events()[0].state == "HALTED"
    assert_rejected(engine, sell(ask, "0.02"), long, "STATE_HALTED")


def test_pause_halts_and_only_resume_leaves(btc_book):
    engine = RiskEngine()
    assert engine.on_command(command("pause", "binanceusdm"))
    assert engine.state(BTC.venue, BTC.symbol) is TradingState.HALTED
    assert engine.state("binance", "BTC/USDT") is TradingState.ACTIVE
    engine.take_events()
    assert not engine.on_command(command("reduce", "binanceusdm"))
    [event] = engine.take_events()
    assert (event.kind, event.reason_code, event.state) == ("reject", "CMD_REJECTED", "HALTED")
    assert engine.on_command(command("pause", "binanceusdm"))  # repeating is harmless
    assert engine.take_events() == []
    assert engine.on_command(command("resume", "binanceusdm"))
    assert engine.state(BTC.venue, BTC.symbol) is TradingState.ACTIVE
    [event] = engine.take_events()
    assert (event.reason_code, event.venue, event.symbol) == ("CMD_RESUME", "binanceusdm", None)


def test_resume_clears_the_scope_and_everything_under_it():
    engine = RiskEngine()
    engine.on_command(command("reduce", BTC.key))
    engine.on_command(command("kill", "binanceusdm"))
    engine.on_command(command("pause", "binance:BTC/USDT"))
    engine.on_command(command("resume", BTC.key))
    assert engine.scopes() == {"binanceusdm": "HALTED", "binance:BTC/USDT": "HALTED"}
    engine.on_command(command("resume", "*"))
    assert engine.scopes() == {}


def test_resume_of_an_instrument_leaves_longer_symbols_alone():
    states = TradingStates()
    states.escalate("binance:BTC/USDT:USDT", TradingState.HALTED)
    assert states.resume("binance:BTC/USDT") == []
    assert states.resume("binance") == [("binance:BTC/USDT:USDT", TradingState.HALTED)]


@pytest.mark.parametrize("target", ["", ":BTC/USDT", "binance:", "bin ance"])
def test_commands_with_a_bad_target_are_refused(target):
    engine = RiskEngine()
    assert not engine.on_command(command("kill", target))
    [event] = engine.take_events()
    assert event.reason_code == "CMD_REJECTED" and repr(target) in event.detail
    assert engine.scopes() == {}


def test_strategy_parameters_are_not_the_risk_engines():
    engine = RiskEngine()
    assert not engine.on_command(command("set_params", gamma="0.1"))
    assert engine.take_events() == []


# -- limits changed at run time -----------------------------------------------------------------


def test_set_limits_applies_at_once(btc_book):
    engine = engine_with(max_order_size="1")
    order = buy(bid_below(btc_book), "0.05")
    assert_accepted(engine, order, context(btc_book))
    assert engine.on_command(command("set_limits", BTC.key, max_order_size="0.01"))
    [event] = engine.take_events()
    assert (event.kind, event.reason_code) == ("limit_change", "LIMITS_CHANGED")
    assert "max_order_size=0.01" in event.detail and "alice" in event.detail
    assert_rejected(engine, order, context(btc_book), "MAX_ORDER_SIZE")
    engine.on_command(command("set_limits", BTC.key, max_order_size="none"))
    engine.take_events()
    assert_accepted(engine, order, context(btc_book))


@pytest.mark.parametrize(
    ("target", "params", "message"),
    [
        ("*", {"max_order_size": "0.01", "max_position": "-1"}, "max_position must be >= 0"),
        ("*", {"max_order_size": "0.01", "max_drawdwn": "5"}, "unknown risk limit"),
        (BTC.key, {"max_order_size": "0.01", "daily_loss_limit": "5"}, "not a per-instrument"),
        ("binanceusdm", {"max_order_size": "0.01"}, "'venue:symbol'"),
        ("*", {}, "no limits"),
    ],
)
def test_bad_limit_updates_are_rejected_whole(btc_book, target, params, message):
    engine = engine_with(max_order_size="1")
    before = engine.limits
    assert not engine.on_command(command("set_limits", target, **params))
    [event] = engine.take_events()
    assert (event.kind, event.reason_code) == ("reject", "LIMITS_REJECTED")
    assert message in event.detail and "nothing changed" in event.detail
    assert engine.limits is before
    assert_accepted(engine, buy(bid_below(btc_book), "0.05"), context(btc_book))


# -- post-trade ---------------------------------------------------------------------------------


def position(instrument, ts, *, realized="0", unrealized="0", fees="0", quantity="0.1"):
    return Position(
        venue=instrument.venue, symbol=instrument.symbol, ts=ts, quantity=D(quantity),
        average_price=None, realized_pnl=D(realized), unrealized_pnl=D(unrealized),
        fees=D(fees),
    )


def test_stop_loss_reduces_that_instrument_only(btc_book):
    engine = engine_with(stop_loss="100")
    engine.on_position(position(BTC, 1, unrealized="-100"))
    assert engine.take_events() == []
    engine.on_position(position(BTC, 2, unrealized="-100.5"))
    [event] = engine.take_events()
    assert (event.reason_code, event.state, event.symbol) == ("STOP_LOSS", "REDUCING", BTC.symbol)
    assert engine.state(BTC.venue, BTC.symbol) is TradingState.REDUCING
    assert engine.state(ETH.venue, ETH.symbol) is TradingState.ACTIVE
    engine.on_position(position(BTC, 3, unrealized="0"))  # recovering does not resume
    assert engine.state(BTC.venue, BTC.symbol) is TradingState.REDUCING
    assert engine.take_events() == []


def test_daily_loss_counts_fees_and_halts_everything():
    engine = engine_with(daily_loss_limit="500")
    engine.on_position(position(BTC, 10, realized="-300", unrealized="-100", fees="100"))
    assert engine.state() is TradingState.ACTIVE
    engine.on_position(position(ETH, 11, unrealized="-0.01"))
    [event] = engine.take_events()
    assert (event.reason_code, event.state, event.venue) == ("DAILY_LOSS", "HALTED", None)
    assert engine.state(ETH.venue, ETH.symbol) is TradingState.HALTED


def test_daily_loss_rolls_over_at_utc_midnight():
    engine = engine_with(daily_loss_limit="500")
    midnight = 19_943 * NS_PER_DAY  # 2024-08-09 00:00 UTC
    engine.on_position(position(BTC, midnight - 1, realized="-450"))
    assert engine.pnl.daily_loss == D("450")
    engine.on_position(position(BTC, midnight, realized="-800"))
    assert engine.pnl.daily_loss == D("350")  # measured from the -450 carried over midnight
    assert engine.state() is TradingState.ACTIVE
    engine.on_position(position(BTC, midnight + NS_PER_DAY // 2, realized="-951"))
    assert engine.state() is TradingState.HALTED
    assert [e.reason_code for e in engine.take_events()] == ["DAILY_LOSS"]


def test_drawdown_from_the_peak_halts():
    engine = engine_with(max_drawdown="200")
    engine.on_position(position(BTC, 1, realized="300"))
    engine.on_position(position(ETH, 2, realized="50"))
    engine.on_position(position(BTC, 3, realized="150"))  # total 200, peak 350
    assert engine.state() is TradingState.ACTIVE
    engine.on_position(position(ETH, 4, realized="-1"))  # total 149
    [event] = engine.take_events()
    assert (event.reason_code, event.state) == ("MAX_DRAWDOWN", "HALTED")
    assert engine.pnl.peak == D("350") and engine.pnl.drawdown == D("201")


def test_taker_limit_price_walks_the_real_book(btc_book):
    asks = btc_book.levels("ask", 50)
    size = asks[0][1] + asks[1][1]  # exactly the two best levels
    assert taker_limit_price(btc_book, "buy", size, None, 50) == asks[1][0]
    assert taker_limit_price(btc_book, "buy", asks[0][1], D(0), 50) == asks[0][0]
    bids = btc_book.levels("bid", 50)
    assert taker_limit_price(btc_book, "sell", bids[0][1] + D("0.001"), None, 50) == bids[1][0]
    bps_to_second = (asks[1][0] - asks[0][0]) / asks[0][0] * 10_000
    with pytest.raises(TakerPriceRejected) as raised:
        taker_limit_price(btc_book, "buy", size, bps_to_second * D("0.99"), 50)
    assert raised.value.reason_code == "SLIPPAGE"
    depth = sum(s for _, s in asks[:3])
    with pytest.raises(TakerPriceRejected) as raised:
        taker_limit_price(btc_book, "buy", depth + D("0.001"), None, 3)
    assert raised.value.reason_code == "INSUFFICIENT_DEPTH"


def test_engine_taker_price_uses_the_instrument_slippage_limit(btc_book):
    engine = engine_with(max_slippage_bps="0")
    ask, size = btc_book.best_ask()
    assert engine.taker_limit_price(BTC, "buy", size, btc_book, 5) == ask
    assert engine.taker_limit_price(BTC, "buy", size * 100, btc_book, 5) is None
    [event] = engine.take_events()
    assert event.reason_code in {"SLIPPAGE", "INSUFFICIENT_DEPTH"}
    assert engine.taker_limit_price(BTC, "buy", size, OrderBook(BTC.venue, BTC.symbol), 6) is None
    assert engine.take_events()[0].reason_code == "INSUFFICIENT_DEPTH"


# -- properties of the state machine --------------------------------------------------------------

ACTIONS = st.sampled_from(["pause", "resume", "reduce", "kill", "stop_loss", "daily_loss"])
TARGETS = st.sampled_from(["*", "binanceusdm", BTC.key, ETH.key])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ACTIONS, TARGETS), max_size=40))
def test_halted_is_never_left_without_resume(steps):
    engine = engine_with(stop_loss="10", daily_loss_limit="100")
    realized = D(0)
    for ts, (action, target) in enumerate(steps, 1):
        halted_before = engine.state(BTC.venue, BTC.symbol) is TradingState.HALTED
        if action == "stop_loss":
            engine.on_position(position(BTC, ts, unrealized="-11", realized=str(realized)))
        elif action == "daily_loss":
            realized -= 60
            engine.on_position(position(BTC, ts, realized=str(realized)))
        else:
            engine.on_command(command(action, target))
        state = engine.state(BTC.venue, BTC.symbol)
        if halted_before and state is not TradingState.HALTED:
            assert action == "resume" and target in {"*", "binanceusdm", BTC.key}
        for event in engine.take_events():
            assert event.reason_code
            if event.kind == "state_change" and event.state == "ACTIVE":
                assert event.reason_code == "CMD_RESUME"


@settings(max_examples=300, deadline=None)
@given(
    position_lots=st.integers(-5, 5),
    working=st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 3)), max_size=4),
    side=st.sampled_from(["buy", "sell"]),
    lots=st.integers(1, 8),
)
def test_reducing_never_accepts_an_exposure_increasing_order(
    btc_book, position_lots, working, side, lots
):
    engine = RiskEngine()
    engine.on_command(command("reduce", BTC.key))
    lot = D("0.01")
    best_bid, best_ask = bid_below(btc_book, 50), ask_above(btc_book, 50)
    orders = [
        LiveOrder(f"o{i}", s, best_bid if s == "buy" else best_ask, n * lot)
        for i, (s, n) in enumerate(working)
    ]
    pos = position_lots * lot
    price = bid_below(btc_book) if side == "buy" else ask_above(btc_book)
    order = OrderRequest(BTC, side, lots * lot, price)
    decision = engine.check(order, context(btc_book, position=pos, orders=orders))
    if decision.accepted:
        same_side = sum((o.remaining for o in orders if o.side == side), D(0))
        signed = lots * lot if side == "buy" else -lots * lot
        worst = pos + (same_side if side == "buy" else -same_side) + signed
        assert worst * pos >= 0 and abs(worst) <= abs(pos)  # towards zero, never through
    else:
        assert decision.reason_code in {"STATE_REDUCING", "SELF_TRADE"}


def test_inverse_contracts_are_limited_by_their_usd_notional_whatever_the_price():
    """COIN-M: 25 contracts of 10 USD are 250 USD at any price (not 25 · price)."""
    coinm = instrument_for("binancecoinm", "ETH/USD:ETH")
    engine = engine_with(max_order_notional="250", max_total_position="400")
    ctx = RiskContext(now_ns=10**18, mid=D("2682.17"), book_ts_ns=10**18, position=D("0"),
                      open_orders=())
    order = OrderRequest(coinm, "buy", D("25"), D("2682.00"))
    assert engine.check(order, ctx).accepted
    too_big = OrderRequest(coinm, "buy", D("26"), D("2682.00"))
    decision = engine.check(too_big, ctx)
    assert (decision.accepted, decision.reason_code) == (False, "MAX_ORDER_NOTIONAL")
    assert "notional 260 above" in decision.detail
    # Long 30 contracts: 300 USD, plus the order's 250 passes the 400 total.
    long_ctx = RiskContext(now_ns=10**18, mid=D("2682.17"), book_ts_ns=10**18,
                           position=D("30"), open_orders=())
    assert engine.check(OrderRequest(coinm, "buy", D("10"), D("2682.00")), long_ctx).accepted
    assert not engine.check(order, long_ctx).accepted
