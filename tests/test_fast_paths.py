"""The backtest path's shortcuts give exactly what the long way gives, on real recordings.

Each shortcut skips work whose result is known (a rematch of an unchanged book, ccxt's
order structure nobody reads, the touch recomputed from the sorted levels, the event loop's
idle turns, a memoryless strategy asked again for the inputs of its last quotes, the
replay's counts kept per event class): these tests run the long way beside the short one
and compare everything that comes out.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import ccxt
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.execution import ccxt_structures
from connectors.execution.executor import Executor
from connectors.paper import adapter, trading
from connectors.paper.inline_loop import InlineLoop
from connectors.paper.trading import PaperSettings
from connectors.paper.venue import PaperVenue
from connectors.replay import binance_hft
from connectors.replay.binance_hft import ReplayStats, iter_events
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import all_instruments
from models.book import OrderBook
from models.events import BBO, BookDelta, BookSnapshot, Fill, Trade, encode
from models.fresh_book import FreshBook
from models.latency import ConstantLatency
from models.markouts import MarkoutTracker
from models.quote_engine import ModelFallbacks, QuoteEngine, build_engine, strategy_setup
from models.quote_session import SkewedStrategy
from models.risk import RiskEngine
from models.strategies import build_strategy
from models.strategies.base import is_memoryless
from quoteflow.sessions import SessionRegistry, TradingOptions
from tests.conftest import SHARED_DATA

USDM_BTC = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
SPOT_ETH = SHARED_DATA / "binance" / "spot" / "ethusdt_20240808.gz"
COINM_ETH = SHARED_DATA / "binance" / "cm" / "ethusd_perp_20240808.gz"
PERP = all_instruments()["binanceusdm:BTC/USDT:USDT"]
D = Decimal


class AlwaysRematchingVenue(PaperVenue):
    """The long way: every non-trade event rematches the whole book."""

    def on_market_event(self, event, book, *, book_changed=True):
        self._rematch.add(event.symbol)
        return super().on_market_event(event, book, book_changed=True)


def _session_outputs(path, venue_class, strategy="avellaneda-stoikov-infinite", latency_ms=0.0):
    latency = ConstantLatency.from_ms(latency_ms, latency_ms, latency_ms)
    registry = SessionRegistry(
        TradingOptions(strategy=strategy, paper=PaperSettings(latency=latency))
    )
    events = list(iter_events(path))
    session = registry(events[0].key)
    session.venue.__class__ = venue_class
    out = [encode(item) for event in events for item in session.on_event(event)]
    return out + [encode(item) for item in session.close()]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "latency_ms"), [(USDM_BTC, 0.0), (USDM_BTC, 5.0), (SPOT_ETH, 0.0)]
)
def test_skipping_the_rematch_of_an_unchanged_book_changes_no_output(shared_data, path, latency_ms):
    fast = _session_outputs(path, PaperVenue, latency_ms=latency_ms)
    slow = _session_outputs(path, AlwaysRematchingVenue, latency_ms=latency_ms)
    assert len(fast) > 1000  # intents, order events and fills, not an idle run
    assert fast == slow


class MatchingEveryDepthDiffVenue(PaperVenue):
    """The long way for one shortcut: every depth diff matches, even one that missed us."""

    def _delta_missed_us(self, symbol, book, resting):
        return False


class CountingDepthSkipsVenue(PaperVenue):
    skipped = 0

    def _delta_missed_us(self, symbol, book, resting):
        missed = super()._delta_missed_us(symbol, book, resting)
        type(self).skipped += missed
        return missed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "latency_ms"), [(USDM_BTC, 0.0), (USDM_BTC, 5.0), (COINM_ETH, 0.0)]
)
def test_skipping_the_match_of_a_depth_diff_that_missed_our_levels_changes_no_output(
    shared_data, path, latency_ms
):
    """The compiled book's changed-price range says the diff changed no level at our prices
    (with the touch kept and nothing crossed): the venue skips `_match_book`."""
    CountingDepthSkipsVenue.skipped = 0
    fast = _session_outputs(path, CountingDepthSkipsVenue, latency_ms=latency_ms)
    slow = _session_outputs(path, MatchingEveryDepthDiffVenue, latency_ms=latency_ms)
    assert CountingDepthSkipsVenue.skipped > 500  # the shortcut was taken, often
    assert len(fast) > 1000
    assert fast == slow


def _queue_after_trade_then_unchanged_book(venue_class) -> list[Decimal]:
    venue = venue_class([PERP], latency=ConstantLatency(entry_ns=0, cancel_ns=0, response_ns=0))
    book = OrderBook(PERP.venue, PERP.symbol)
    snapshot = BookSnapshot(
        venue=PERP.venue, symbol=PERP.symbol, exchange_ts=1, receive_ts=1, seq=10,
        bids=[(D("100.0"), D("5"))], asks=[(D("100.1"), D("5"))],
    )
    book.apply(snapshot)
    venue.on_market_event(snapshot, book)
    venue.place(PERP.symbol, "limit", "buy", D("1"), D("100.0"), {"clientOrderId": "a"})
    trade = Trade(
        venue=PERP.venue, symbol=PERP.symbol, exchange_ts=3, receive_ts=3,
        price=D("100.0"), size=D("2"), side="sell",
    )
    bbo_time = BookSnapshot(
        venue=PERP.venue, symbol=PERP.symbol, exchange_ts=4, receive_ts=4, seq=10, bids=[], asks=[]
    )
    delta = BookDelta(
        venue=PERP.venue, symbol=PERP.symbol, exchange_ts=5, receive_ts=5, seq=11,
        first_seq=9, prev_seq=8, bids=[(D("100.0"), D("3"))], asks=[],
    )
    ahead = []
    for event, changed in ((trade, False), (bbo_time, False), (delta, True)):
        if changed:
            book.apply(event)
        venue.on_market_event(event, book, book_changed=changed)
        ahead.append(venue.fetch_order("a")["info"]["queue_ahead"])
    return ahead


def test_a_trade_then_an_unchanged_book_still_rematches_the_queue():
    """A trade moves our queue position, so the next event rematches even if the book is the
    same: the long way's queue estimate, step by step."""
    fast = _queue_after_trade_then_unchanged_book(PaperVenue)
    assert fast == _queue_after_trade_then_unchanged_book(AlwaysRematchingVenue)
    assert fast[0] == D("3")  # the trade took 2 of the 5 ahead of us


def test_place_and_request_cancel_act_like_their_ccxt_shaped_twins():
    long_way, short_way = PaperVenue([PERP]), PaperVenue([PERP])
    params = {"clientOrderId": "q1", "postOnly": True}
    created = long_way.create_order(PERP.symbol, "limit", "buy", D("0.01"), D("60000.0"), params)
    order_id = short_way.place(PERP.symbol, "limit", "buy", D("0.01"), D("60000.0"), params).id
    assert order_id == created["id"]
    # The same client id is idempotent on both paths.
    again = short_way.place(PERP.symbol, "limit", "buy", D("0.01"), D("60000.0"), params)
    assert again.id == order_id
    long_way.cancel_order("q1", PERP.symbol, {"clientOrderId": "q1"})
    assert short_way.request_cancel("q1", PERP.symbol, {"clientOrderId": "q1"}) is None
    assert short_way.fetch_order(order_id) == long_way.fetch_order(order_id)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("BTC/EUR", "limit", "buy", D("0.01"), D("60000.0")), ccxt.BadSymbol),
        ((PERP.symbol, "limit", "buy", D("0.0101"), D("60000.0")), ccxt.InvalidOrder),
        ((PERP.symbol, "limit", "buy", D("0.01"), D("60000.05")), ccxt.InvalidOrder),
        ((PERP.symbol, "limit", "hold", D("0.01"), D("60000.0")), ccxt.InvalidOrder),
        ((PERP.symbol, "limit", "buy", "lots", D("60000.0")), ccxt.InvalidOrder),
    ],
)
def test_place_rejects_what_create_order_rejects(args, error):
    with pytest.raises(error):
        PaperVenue([PERP]).place(*args)
    with pytest.raises(ccxt.OrderNotFound):
        PaperVenue([PERP]).request_cancel("unknown", PERP.symbol)


@pytest.mark.slow
def test_the_kept_touch_matches_a_naive_book_over_a_whole_recording(shared_data):
    book = OrderBook(PERP.venue, PERP.symbol)
    naive: dict[str, dict[Decimal, Decimal]] = {"bid": {}, "ask": {}}
    checked = 0
    for event in iter_events(USDM_BTC):
        if not isinstance(event, BookSnapshot | BookDelta):
            continue
        if book.apply(event) != "applied":
            continue
        if isinstance(event, BookSnapshot):
            # The snapshot with the deltas buffered before it, read once in full.
            naive = {side: dict(book.levels(side, 1_000_000)) for side in ("bid", "ask")}
        else:
            for side, levels in (("bid", event.bids), ("ask", event.asks)):
                for price, size in levels:
                    if size:
                        naive[side][price] = size
                    else:
                        naive[side].pop(price, None)
        best_bid = max(naive["bid"])
        best_ask = min(naive["ask"])
        assert book.best_bid() == (best_bid, naive["bid"][best_bid])
        assert book.best_ask() == (best_ask, naive["ask"][best_ask])
        assert book.mid() == (best_bid + best_ask) / 2
        checked += 1
        if checked % 500 == 0:
            top = sorted(naive["bid"], reverse=True)[:5]
            assert book.levels("bid", 5) == [(p, naive["bid"][p]) for p in top]
            top = sorted(naive["ask"])[:5]
            assert book.levels("ask", 5) == [(p, naive["ask"][p]) for p in top]
    assert checked > 6000


@given(
    st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.integers(1, 40)), max_size=60)
)
def test_markouts_skip_nothing_that_is_due(steps):
    """Against the definition: the first mid at or after fill time + horizon."""
    tracker = MarkoutTracker((2, 5))
    ts, mids, fills = 0, [], []
    for dt, is_fill, price in steps:
        ts += dt
        if is_fill:
            fill = Fill(
                venue="v", symbol="s", ts=ts, client_order_id="c", trade_id=str(len(fills)),
                side="buy", price=D(price), size=D(1), fee=D(0), fee_currency="Q",
                liquidity="maker",
            )
            tracker.on_fill(fill, D(price))
            fills.append(fill)
        else:
            tracker.on_mid(ts, D(price))
            mids.append((ts, D(price)))
    results = tracker.results()
    for label, horizon in (("2ns", 2), ("5ns", 5)):
        expected = [
            next((mid - f.price for t, mid in mids if t >= f.ts + horizon), None) for f in fills
        ]
        done = [move for move in expected if move is not None]
        assert results[label]["count"] == len(done)
        assert results[label]["sum"] == sum(done, D(0))
        assert results[label]["pending"] == len(expected) - len(done)


async def _callbacks_in_order(trace: list, label: str, wait_s: float, fail: bool) -> str:
    """The executor's shapes: tasks started before a `sleep(0)`, a gather, timeouts, a
    callback left for after the end, optionally a real wait and an error."""
    loop = asyncio.get_running_loop()

    async def step(name: str) -> None:
        trace.append(f"{label}:{name}")
        await asyncio.sleep(0)
        async with asyncio.timeout(5):  # a request's: answered (and cancelled) at once
            if wait_s and name == "b":
                await asyncio.sleep(wait_s)  # something waits: the loop proper takes over
            trace.append(f"{label}:{name} again")

    early = [asyncio.ensure_future(step(name)) for name in ("c1", "c2")]
    await asyncio.sleep(0)
    await asyncio.gather(*early, step("a"), step("b"))

    def chain(left: int) -> None:  # outlives the task: the last links run in the next call
        trace.append(f"{label}: link {left}")
        if left:
            loop.call_soon(chain, left - 1)

    loop.call_soon(chain, 3)
    if fail:
        raise ValueError(label)
    return label


@pytest.mark.parametrize(("wait_s", "fail"), [(0.0, False), (0.002, False), (0.0, True)])
def test_the_inline_loop_runs_callbacks_as_run_until_complete_does(wait_s, fail):
    traces = []
    for run in (InlineLoop().run, asyncio.new_event_loop().run_until_complete):
        trace: list = []
        for label in ("first", "second"):
            try:
                trace.append(run(_callbacks_in_order(trace, label, wait_s, fail)))
            except ValueError as error:
                trace.append(f"raised {error}")
        traces.append(trace)
    assert traces[0] == traces[1]
    assert len(traces[0]) > 20


def test_the_inline_loop_gives_each_thread_its_own_loop():
    inline = InlineLoop()

    async def loop_of_the_call() -> asyncio.AbstractEventLoop:
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    here = inline.run(loop_of_the_call())
    assert inline.run(loop_of_the_call()) is here
    with ThreadPoolExecutor(1) as pool:
        there = pool.submit(inline.run, loop_of_the_call()).result()
    assert there is not here


def test_the_inline_loop_refuses_to_run_inside_a_running_loop():
    async def nested() -> None:
        with pytest.raises(RuntimeError, match="another loop is running"):
            InlineLoop().run(asyncio.sleep(0))

    asyncio.run(nested())


@pytest.mark.slow
@pytest.mark.parametrize(("path", "latency_ms"), [(USDM_BTC, 0.0), (SPOT_ETH, 5.0)])
def test_a_backtest_gives_what_the_loop_and_ccxt_structures_give(
    shared_data, monkeypatch, path, latency_ms
):
    """The inline loop and the adapter's direct answers against `run_until_complete` and
    ccxt's order structures: every intent, order event, fill and position (so the PnL) of a
    backtest on a real recording, and its markouts."""
    fast, fast_session = _session_outputs_and_session(path, latency_ms)
    loop = asyncio.new_event_loop()
    monkeypatch.setattr(trading, "_run", loop.run_until_complete)
    monkeypatch.setattr(
        adapter, "venue_order", lambda order: ccxt_structures.venue_order(order.to_ccxt())
    )
    monkeypatch.setattr(adapter.PaperVenueAdapter, "fetch_my_trades", _ccxt_shaped_trades)
    slow, slow_session = _session_outputs_and_session(path, latency_ms)
    loop.close()
    assert sum(b'"fill"' in item for item in fast) > 50
    assert fast == slow
    assert fast_session.markouts.results() == slow_session.markouts.results()
    assert fast_session.last_mid == slow_session.last_mid
    # Reconciliation's fills: the venue's own, as its ccxt trades read back would give them.
    venue, symbol = fast_session.venue, fast_session.symbol
    fills = venue.my_fills(symbol)
    middle = fills[len(fills) // 2].ts - 1
    for since_ns in (None, middle):
        expected = asyncio.run(_ccxt_shaped_trades(fast_session.adapter, symbol, since_ns))
        got = asyncio.run(fast_session.adapter.fetch_my_trades(symbol, since_ns))
        assert got == expected
        assert len(got) == (len(fills) if since_ns is None else len(fills) - len(fills) // 2)


async def _ccxt_shaped_trades(self, symbol, since_ns=None):
    """The long way: the venue's ccxt trade structures, read back."""
    await self._limiter.acquire(self.costs.fetch_my_trades)
    since_ms = None if since_ns is None else since_ns // 1_000_000
    return [
        ccxt_structures.fill(trade, self.id, trade["clientOrderId"], trade["fee"]["currency"])
        for trade in self.venue.fetch_my_trades(symbol)
        if since_ms is None or trade["timestamp"] >= since_ms
    ]


def _session_outputs_and_session(path, latency_ms):
    latency = ConstantLatency.from_ms(latency_ms, latency_ms, latency_ms)
    registry = SessionRegistry(
        TradingOptions(strategy="avellaneda-stoikov-infinite", paper=PaperSettings(latency=latency))
    )
    events = list(iter_events(path))
    session = registry(events[0].key)
    out = [encode(item) for event in events for item in session.on_event(event)]
    return out + [encode(item) for item in session.close()], session


def test_an_audit_that_keeps_nothing_gets_no_records_made_unless_someone_listens(shared_data):
    """The backtest's executor skips making audit records its store would drop; with an
    `on_audit` listener (or a store that keeps them) every record is made as before."""
    appended: list[str] = []

    class Discarding:
        discards = True

        @staticmethod
        def append(ts, actor, action, payload):
            appended.append(action)
            return action

    session = SessionRegistry(TradingOptions(strategy="avellaneda-stoikov-infinite"))(
        next(iter_events(USDM_BTC)).key
    )
    heard: list[str] = []
    for on_audit, expected in ((None, []), (heard.append, ["probe"])):
        executor = Executor(
            session.adapter, [session.instrument], RiskEngine(), emit=lambda event: None,
            audit=Discarding(), on_audit=on_audit,
        )
        executor.audit("probe", {})
        assert appended == expected
    assert heard == ["probe"]
    assert not session.executor._audited  # the paper trader's store keeps nothing


class AlwaysAskingEngine(QuoteEngine):
    """The long way: the strategy is asked again, and its quotes put on the grid, at every
    book change, even when nothing it quotes from has changed."""

    __slots__ = ()

    def on_book(self, ts_ns, book, trigger_receive_ts):
        self._quoted_from = None
        return super().on_book(ts_ns, book, trigger_receive_ts)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "strategy", "latency_ms"),
    [(USDM_BTC, "avellaneda-stoikov-infinite", 0.0), (USDM_BTC, "glft", 5.0),
     (SPOT_ETH, "ladder", 0.0)],
)
def test_skipping_the_quote_of_unchanged_inputs_changes_no_output(
    shared_data, path, strategy, latency_ms
):
    asked: list[int] = []

    class CountingEngine(QuoteEngine):
        __slots__ = ()

        def on_book(self, ts_ns, book, trigger_receive_ts):
            before = self._quoted_from
            intent = super().on_book(ts_ns, book, trigger_receive_ts)
            asked.append(before is None or intent is not None or self._quoted_from is not before)
            return intent

    fast = _outputs_with_engine(path, CountingEngine, strategy, latency_ms)
    slow = _outputs_with_engine(path, AlwaysAskingEngine, strategy, latency_ms)
    assert len(fast) > 1000  # intents, order events and fills, not an idle run
    assert fast == slow
    assert asked.count(False) > len(asked) // 4  # the shortcut is taken, often


def _outputs_with_engine(path, engine_class, strategy, latency_ms):
    latency = ConstantLatency.from_ms(latency_ms, latency_ms, latency_ms)
    registry = SessionRegistry(
        TradingOptions(strategy=strategy, paper=PaperSettings(latency=latency))
    )
    events = list(iter_events(path))
    session = registry(events[0].key)
    session.quoting.engine.__class__ = engine_class
    out = [encode(item) for event in events for item in session.on_event(event)]
    return out + [encode(item) for item in session.close()]


_ENGINE_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("book"), st.sampled_from(["61800.0", "61800.5"]),
                  st.just("61801.0"), st.integers(0, 3)),
        st.tuples(st.just("fill"), st.sampled_from(["buy", "sell"])),
        st.tuples(st.just("skew"), st.sampled_from([0.0, 0.5, -1.0])),
        st.tuples(st.just("switch"), st.sampled_from(["ladder", "glft"])),
        st.tuples(st.just("withdraw")),
    ),
    max_size=40,
)


_BOOK = ("book", "61800.0", "61801.0", 1)


@given(_ENGINE_STEPS)
@example([_BOOK, ("skew", 0.5), _BOOK])
@example([_BOOK, ("fill", "buy"), ("fill", "sell"), _BOOK])
@example([_BOOK, ("switch", "glft"), ("switch", "avellaneda-stoikov-infinite"), _BOOK])
@example([_BOOK, ("withdraw",), _BOOK])
def test_the_engine_asks_again_whenever_an_input_changed(steps):
    """Fills, a skew, a strategy switch, a withdrawal and the clock (estimators' samples)
    between book changes: the shortcut gives every intent the long way gives."""
    assert is_memoryless(SkewedStrategy(build_strategy("glft", {})))
    assert not is_memoryless(SkewedStrategy(build_strategy("bandit", {})))
    results = []
    for engine_class in (QuoteEngine, AlwaysAskingEngine):
        engine = build_engine(
            PERP, "avellaneda-stoikov-infinite", {}, max_inventory_lots=D(3),
            fallbacks=ModelFallbacks(sigma=5.0, A=1.0, k=0.5), wrap_strategy=SkewedStrategy,
        )
        engine.__class__ = engine_class
        out = []
        for i, step in enumerate(steps):
            ts = i * 400_000_000
            if step[0] == "book":
                book = FreshBook()
                book.apply(BBO(venue=PERP.venue, symbol=PERP.symbol, exchange_ts=ts,
                               receive_ts=ts, bid_price=D(step[1]), bid_size=D(1),
                               ask_price=D(step[2]), ask_size=D(1)))
                for _ in range(step[3] + 1):
                    out.append(engine.on_book(ts, book, ts))
            elif step[0] == "fill":
                engine.on_fill(Fill(
                    venue=PERP.venue, symbol=PERP.symbol, ts=ts, client_order_id="c",
                    trade_id=str(i), side=step[1], price=D("61800"), size=D("0.001"),
                    fee=D(0), fee_currency="USDT", liquidity="maker",
                ))
            elif step[0] == "skew":
                engine.strategy.skew = step[1]
            elif step[0] == "switch":
                strategy, limits = strategy_setup(PERP, step[1], {}, D(3))
                engine.strategy.inner = strategy
                engine.switch(engine.strategy, limits)
            else:
                out.append(engine.withdraw(ts, ts))
        results.append([None if intent is None else encode(intent) for intent in out])
    assert results[0] == results[1]


class TagCountingStats(ReplayStats):
    """The long way beside: each event's tag looked up and counted as it is decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()

    def count(self, event) -> None:
        super().count(event)
        self.tags[event.__struct_config__.tag] += 1


@pytest.mark.slow
def test_replay_counts_per_class_equal_each_event_counted_by_its_tag(
    shared_data, tmp_path, monkeypatch
):
    """The replay's counts kept per event class are the tags counted one by one, in the same
    order too (the summary's JSON keeps it), over merged recordings with a dead letter."""
    made: list[TagCountingStats] = []

    def both_ways() -> TagCountingStats:
        made.append(TagCountingStats())
        return made[-1]

    monkeypatch.setattr(binance_hft, "ReplayStats", both_ways)
    damaged = tmp_path / "damaged.gz"
    with gzip.open(SPOT_ETH, "rb") as lines:
        head = b"".join(itertools.islice(lines, 2000))
    damaged.write_bytes(gzip.compress(b"not-a-timestamp {}\n" + head))
    recordings = Recordings([damaged, USDM_BTC])
    events = list(recordings.events())
    stats = recordings.stats()
    (long_way,) = made
    assert list(stats["events"].items()) == list(long_way.tags.items())
    assert next(iter(long_way.tags)) == "dead_letter" and len(long_way.tags) == 5
    assert sorted(long_way.tags.elements()) == sorted(
        event.__struct_config__.tag for event in events
    )
    assert stats["lines"] == len(events) == 2001 + 93_954
    assert stats["dead_letter_reasons"] == {"bad_timestamp": 1}
