"""Arbitrage signals: edge math, emission policy, staleness, bad input, and the Bytewax flow,
on the real Binance spot and USD-M recordings (same minutes) and cryptofeed's L2 recordings."""

from __future__ import annotations

import heapq
from decimal import Decimal

import msgspec
import pytest
from bytewax.testing import run_main
from hypothesis import given
from hypothesis import strategies as st

from connectors.memory import CallbackSink, ChunkedSource
from connectors.replay.recordings import Recordings
from connectors.venues.market_cache import all_instruments
from flows.arbitrage import build_arbitrage_flow
from models.arbitrage import (
    DEAD_LETTER_KEY,
    UNROUTABLE_KEY,
    ArbitrageConfig,
    ArbitrageEngine,
    AssetGrouper,
    parse_symbol,
)
from models.book import OrderBook
from models.events import BBO, ArbSignal, BookDelta, BookSnapshot, DeadLetter, Trade
from tests.conftest import BINANCE_FILES, CRYPTOFEED_DIR, SHARED_DATA

SPOT_BTC = SHARED_DATA / "binance" / "spot" / "btcusdt_20240808.gz"
USDM_BTC = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
SECOND = 1_000_000_000
FEES = {"a": Decimal("0.001"), "b": Decimal("0.0005"), "coinbase": Decimal("0.006")}


def cached_fees_config(**overrides) -> ArbitrageConfig:
    """The config as the flow builds it: taker fees of the cached instruments."""
    return ArbitrageConfig(**{"instruments": all_instruments(), **overrides})


def bbo(venue, symbol, bid, ask, ts, bid_size="1", ask_size="1") -> BBO:
    return BBO(
        venue=venue, symbol=symbol, exchange_ts=ts, receive_ts=ts,
        bid_price=Decimal(bid), bid_size=Decimal(bid_size),
        ask_price=Decimal(ask), ask_size=Decimal(ask_size),
    )


def engine(**overrides) -> ArbitrageEngine:
    overrides.setdefault("venue_taker_fees", FEES)
    overrides.setdefault("instruments", {})
    return ArbitrageEngine(cached_fees_config(**overrides))


def feed(eng: ArbitrageEngine, events) -> list:
    out = []
    for event in events:
        out.extend(eng.on_event(event))
    return out


def decimal_edges(buy_ask: Decimal, buy_fee: Decimal, sell_bid: Decimal, sell_fee: Decimal):
    """The documented formulas, in exact decimal arithmetic: (gross bps, net bps)."""
    gross = (sell_bid - buy_ask) / buy_ask * 10_000
    net = (sell_bid * (1 - sell_fee) - buy_ask * (1 + buy_fee)) / buy_ask * 10_000
    return gross, net


def assert_edges(signal: ArbSignal, buy_fee: Decimal, sell_fee: Decimal) -> None:
    gross, net = decimal_edges(signal.buy_price, buy_fee, signal.sell_price, sell_fee)
    assert signal.gross_edge_bps == pytest.approx(float(gross), rel=1e-12, abs=1e-9)
    assert signal.net_edge_bps == pytest.approx(float(net), rel=1e-12, abs=1e-9)


# -- symbols and groups ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "parsed"),
    [
        ("BTC/USDT", ("BTC", "USDT", "spot")),
        ("BTC/USDT:USDT", ("BTC", "USDT", "perp")),
        ("BTC/USD:BTC", None),  # inverse: sized in contracts of quote value
        ("BTC/USDT:USDT-240927", None),  # dated future
        ("BTC/USD:BTC-220527", None),
        ("BTCUSDT", None),
        ("/USDT", None),
        ("BTC/", None),
        ("BTC/USDT/X", None),
        ("", None),
    ],
)
def test_parse_symbol(symbol, parsed):
    assert parse_symbol(symbol) == parsed


def test_groups_join_spot_and_perp_and_keep_usd_apart_from_usdt_by_default():
    plain = AssetGrouper({})
    assert plain.group("BTC/USDT") == plain.group("BTC/USDT:USDT") == "BTC/USDT"
    assert plain.group("BTC/USD") == "BTC/USD"
    aliased = AssetGrouper({"USDT": "USD"})
    assert aliased.group("BTC/USDT") == aliased.group("BTC/USD") == "BTC/USD"


def test_route_sends_dead_letters_and_groupless_items_to_their_own_keys():
    route = AssetGrouper({}).route
    dead = DeadLetter(source="x", reason="bad json", raw="{")
    assert route(dead) == DEAD_LETTER_KEY
    assert route(bbo("a", "BTC/USD:BTC", "1", "2", 0)) == UNROUTABLE_KEY
    assert route("not an event") == UNROUTABLE_KEY
    assert route(bbo("a", "ETH/USDT:USDT", "1", "2", 0)) == "ETH/USDT"


# -- edge math ---------------------------------------------------------------------------------


def test_edges_fees_and_signs_by_hand():
    eng = engine()
    signals = feed(eng, [
        bbo("a", "X/USD", "99", "100", 0, ask_size="3"),
        bbo("b", "X/USD", "101", "102", 1, bid_size="2"),
    ])
    buy_a, buy_b = signals
    assert (buy_a.buy_venue, buy_a.sell_venue, buy_a.kind) == ("a", "b", "cross_venue")
    assert (buy_a.buy_price, buy_a.sell_price, buy_a.size) == (Decimal(100), Decimal(101), 2)
    assert buy_a.gross_edge_bps == pytest.approx(100.0)
    # 101 * (1 - 0.0005) - 100 * (1 + 0.001) = 0.8495 per unit, on 100 bought: 84.95 bps.
    assert buy_a.net_edge_bps == pytest.approx(84.95)
    # The other way round buys dear and sells cheap: both edges negative, fees make it worse.
    assert (buy_b.buy_venue, buy_b.buy_price, buy_b.sell_price) == ("b", Decimal(102), 99)
    assert buy_b.gross_edge_bps == pytest.approx(-294.11764705882354)
    assert buy_b.net_edge_bps == pytest.approx((99 * 0.999 - 102 * 1.0005) / 102 * 1e4)
    assert (buy_a.buy_age_ns, buy_a.sell_age_ns, buy_a.ts) == (1, 0, 1)


prices = st.decimals(min_value="0.01", max_value="100000", places=2)
sizes = st.decimals(min_value="0.001", max_value="1000", places=3)
fees = st.decimals(min_value="0", max_value="0.01", places=5)


@given(prices, prices, prices, prices, sizes, sizes, sizes, sizes, fees, fees)
def test_edges_match_the_exact_formula_and_never_both_positive(
    p1, p2, p3, p4, s1, s2, s3, s4, fee_a, fee_b
):
    bid_a, ask_a = sorted((p1, p2 + Decimal("0.01")))
    bid_b, ask_b = sorted((p3, p4 + Decimal("0.01")))
    if bid_a == ask_a or bid_b == ask_b:
        return
    eng = engine(venue_taker_fees={"a": fee_a, "b": fee_b})
    a_to_b, b_to_a = feed(eng, [
        bbo("a", "X/USD", bid_a, ask_a, 0, s1, s2),
        bbo("b", "X/USD:USD", bid_b, ask_b, 0, s3, s4),
    ])
    assert a_to_b.kind == b_to_a.kind == "spot_perp"
    assert (a_to_b.buy_price, a_to_b.sell_price, a_to_b.size) == (ask_a, bid_b, min(s2, s3))
    assert (b_to_a.buy_price, b_to_a.sell_price, b_to_a.size) == (ask_b, bid_a, min(s4, s1))
    assert_edges(a_to_b, fee_a, fee_b)
    assert_edges(b_to_a, fee_b, fee_a)
    assert a_to_b.net_edge_bps <= a_to_b.gross_edge_bps
    # Each book's own spread means a round trip always loses: one direction at most earns.
    assert not (a_to_b.gross_edge_bps > 0 and b_to_a.gross_edge_bps > 0)


# -- emission policy ---------------------------------------------------------------------------


def best_net(signals) -> float:
    return max(s.net_edge_bps for s in signals)


def test_emits_on_open_on_change_and_on_heartbeat_only():
    # Zero fees and a 1-bps change step: edges in bps are simple price differences.
    eng = engine(venue_taker_fees={"a": Decimal(0), "b": Decimal(0)}, threshold_bps=50.0,
                 change_bps=1.0, heartbeat_ns=10 * SECOND, max_age_ns=100 * SECOND)
    assert feed(eng, [bbo("a", "X/USD", "9999", "10000", 0)]) == []  # one leg: nothing to pair
    opened = feed(eng, [bbo("b", "X/USD", "9990", "9991", 1)])
    assert len(opened) == 2  # both directions
    # Half a bps of movement: quiet.
    assert feed(eng, [bbo("b", "X/USD", "9990.5", "9991.5", 2)]) == []
    # A full bps against the last emitted best: both directions again.
    moved = feed(eng, [bbo("b", "X/USD", "9991", "9992", 3)])
    assert len(moved) == 2
    assert best_net(opened) - best_net(moved) == pytest.approx(1.0, abs=0.01)
    # Nothing moves, but the heartbeat interval has passed since the last emission.
    assert feed(eng, [bbo("b", "X/USD", "9991", "9992", 3 + 10 * SECOND - 1)]) == []
    assert len(feed(eng, [bbo("b", "X/USD", "9991", "9992", 3 + 10 * SECOND)])) == 2


def test_threshold_crossings_emit_with_hysteresis_and_no_heartbeat():
    eng = engine(venue_taker_fees={"a": Decimal(0), "b": Decimal(0)}, threshold_bps=5.0,
                 hysteresis_bps=0.5, change_bps=100.0, heartbeat_ns=None,
                 max_age_ns=1000 * SECOND)
    feed(eng, [bbo("a", "X/USD", "9999", "10000", 0)])

    def b_bid(bid: str, ts: int) -> list:
        return feed(eng, [bbo("b", "X/USD", bid, "10100", ts)])

    assert len(b_bid("10004.9", 1)) == 2  # opens below the threshold (4.9 bps)
    assert len(b_bid("10005.1", 2)) == 2  # crosses up
    assert b_bid("10004.8", 3) == []  # 4.8: inside the hysteresis band, still "above"
    assert b_bid("10005.1", 4) == []
    assert len(b_bid("10004.4", 5)) == 2  # 4.4 < 5 - 0.5: crosses down
    assert b_bid("10004.9", 6) == []
    assert b_bid("10004.9", 10**15) == []  # no heartbeat configured


# -- staleness ---------------------------------------------------------------------------------


def test_a_quote_older_than_max_age_is_not_used_and_the_pair_reopens_on_refresh():
    eng = engine(max_age_ns=SECOND)
    feed(eng, [bbo("a", "X/USD", "99", "100", 0)])
    assert len(feed(eng, [bbo("b", "X/USD", "99", "100", SECOND)])) == 2  # exactly max_age: used
    assert feed(eng, [bbo("b", "X/USD", "98", "100", SECOND + 1)]) == []  # a is 1 ns too old
    assert eng.stats.stale == 1
    refreshed = feed(eng, [bbo("a", "X/USD", "99", "100", SECOND + 2)])
    assert len(refreshed) == 2  # reopened, though the edge barely moved
    assert {s.buy_age_ns + s.sell_age_ns for s in refreshed} == {1}


def test_the_clock_is_the_newest_event_time_of_the_group_not_of_the_engine():
    eng = engine(max_age_ns=SECOND)
    feed(eng, [bbo("a", "X/USD", "99", "100", 0), bbo("b", "X/USD", "99", "100", 0)])
    # Another asset's events far in the future do not age X's quotes.
    feed(eng, [bbo("a", "Y/USD", "1", "2", 100 * SECOND)])
    assert eng.stats.stale == 0
    assert len(feed(eng, [bbo("b", "X/USD", "98", "100", SECOND)])) == 2


# -- which quotes are joined -------------------------------------------------------------------


def test_usd_and_usdt_meet_only_when_aliased():
    events = [bbo("coinbase", "BTC/USD", "60000", "60001", 0),
              bbo("a", "BTC/USDT", "60010", "60011", 1)]
    assert feed(engine(), events) == []
    aliased = feed(engine(quote_aliases={"USDT": "USD"}), events)
    assert {(s.buy_symbol, s.sell_symbol) for s in aliased} == {
        ("BTC/USD", "BTC/USDT"), ("BTC/USDT", "BTC/USD")}
    # Two spot books of one venue under an alias are a stablecoin triangle, not this trade.
    same_venue = [bbo("a", "BTC/USD", "60000", "60001", 0), *events[1:]]
    assert feed(engine(quote_aliases={"USDT": "USD"}), same_venue) == []


def test_l2_only_legs_use_the_book_top_and_a_bbo_supersedes_the_book():
    eng = engine()
    snapshot = BookSnapshot(venue="b", symbol="X/USD", exchange_ts=0, receive_ts=0, seq=None,
                            bids=[(Decimal(99), Decimal(5)), (Decimal(98), Decimal(1))],
                            asks=[(Decimal(101), Decimal(7))])
    delta = BookDelta(venue="b", symbol="X/USD", exchange_ts=2, receive_ts=2, seq=None,
                      bids=[(Decimal(100), Decimal(2))], asks=[])
    feed(eng, [bbo("a", "X/USD", "97", "98", 0), snapshot])
    signals = feed(eng, [delta])
    assert {(s.buy_venue, s.buy_price, s.sell_price) for s in signals} == {
        ("a", Decimal(98), Decimal(100)), ("b", Decimal(101), Decimal(97))}
    assert eng.stats.book == 2
    feed(eng, [bbo("b", "X/USD", "99.5", "100.5", 3)])
    later = BookDelta(venue="b", symbol="X/USD", exchange_ts=4, receive_ts=4, seq=None,
                      bids=[(Decimal("99.9"), Decimal(1))], asks=[])
    assert feed(eng, [later]) == []
    assert eng.stats.ignored == 1


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_counted_and_never_crashes():
    eng = engine(max_age_ns=100 * SECOND)
    dead = DeadLetter(source="binance", reason="bad json", raw="{", receive_ts=5)
    feed(eng, [bbo("a", "X/USD", "99", "100", 0), bbo("b", "X/USD", "99", "100", 0)])
    crossed = bbo("a", "X/USD", "101", "100", 1)
    locked = bbo("a", "X/USD", "100", "100", 2)
    empty = bbo("a", "X/USD", "99", "100", 3, bid_size="0")
    no_price = bbo("a", "X/USD", "0", "100", 4)
    nan = bbo("a", "X/USD", "NaN", "100", 5)
    assert feed(eng, [crossed, locked, empty, no_price, nan]) == []
    assert eng.stats.bad_quote == 5
    # The unusable leg stays unused when the other side moves.
    assert feed(eng, [bbo("b", "X/USD", "90", "91", 6)]) == []
    assert eng.on_event(dead) == [dead]
    assert feed(eng, [bbo("nowhere", "X/USD", "1", "2", 7)]) == []  # no fee known
    assert feed(eng, [bbo("a", "X/USD:X", "1", "2", 8)]) == []  # inverse perpetual
    trade = Trade(venue="b", symbol="X/USD", exchange_ts=9, receive_ts=9,
                  price=Decimal(90), size=Decimal(1), side="buy")
    assert feed(eng, [trade]) == []
    (letter,) = eng.on_event({"venue": "a"})
    assert isinstance(letter, DeadLetter) and "not a market event: dict" in letter.reason
    assert eng.stats.as_dict() == {
        "bad_quote": 5, "bbo": 3, "book": 0, "dead_letters": 1, "ignored": 1, "malformed": 1,
        "no_top": 0, "signals": 2, "stale": 0, "unknown_fee": 1, "unsupported_symbol": 1,
    }
    assert len(feed(eng, [bbo("a", "X/USD", "89", "90", 10)])) == 2  # a good quote restores it


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_age_ns": 0}, "max_age_ns"),
        ({"change_bps": 0.0}, "change_bps"),
        ({"hysteresis_bps": -1.0}, "hysteresis_bps"),
        ({"heartbeat_ns": 0}, "heartbeat_ns"),
        ({"venue_taker_fees": {"a": Decimal(1)}}, "venue_taker_fees"),
        ({"venue_taker_fees": {"a": 0.001}}, "Decimal"),
    ],
)
def test_config_errors_say_what_is_wrong(overrides, message):
    with pytest.raises(ValueError, match=message):
        cached_fees_config(**overrides)


def test_fees_come_from_the_instrument_before_the_venue_default():
    config = cached_fees_config(venue_taker_fees={"binance": Decimal("0.002")})
    assert config.taker_fee("binance", "BTC/USDT") == Decimal("0.001")
    assert config.taker_fee("binance", "SOL/USDT") == Decimal("0.002")
    assert config.taker_fee("kraken", "BTC/USD") is None


# -- the Binance spot and USD-M recordings -----------------------------------------------------


@pytest.fixture(scope="module")
def binance_btc(shared_data) -> list:
    return list(Recordings([SPOT_BTC, USDM_BTC]).events())


def replay_checked(events: list, config: ArbitrageConfig) -> tuple[ArbitrageEngine, list]:
    """Replays `events` and checks every signal against the BBOs in force, kept here
    independently of the engine; returns the engine and all signals."""
    eng = ArbitrageEngine(config)
    latest: dict[tuple[str, str], BBO] = {}
    signals = []
    for event in events:
        if type(event) is BBO:
            latest[event.venue, event.symbol] = event
        out = eng.on_event(event)
        for signal in out:
            buy = latest[signal.buy_venue, signal.buy_symbol]
            sell = latest[signal.sell_venue, signal.sell_symbol]
            assert signal.ts == event.receive_ts
            assert (signal.buy_price, signal.sell_price) == (buy.ask_price, sell.bid_price)
            assert signal.size == min(buy.ask_size, sell.bid_size)
            assert signal.buy_age_ns == event.receive_ts - buy.receive_ts
            assert signal.sell_age_ns == event.receive_ts - sell.receive_ts
            assert max(signal.buy_age_ns, signal.sell_age_ns) <= config.max_age_ns
            assert_edges(
                signal,
                all_instruments()[f"{signal.buy_venue}:{signal.buy_symbol}"].taker_fee,
                all_instruments()[f"{signal.sell_venue}:{signal.sell_symbol}"].taker_fee,
            )
        signals.extend(out)
    return eng, signals


def test_binance_spot_perp_signals_are_the_bbos_in_force_with_exact_edges(binance_btc):
    config = cached_fees_config()
    eng, signals = replay_checked(binance_btc, config)
    assert len(signals) > 500
    assert {s.kind for s in signals} == {"spot_perp"}
    # Both directions every time, and every input item counted exactly once.
    assert len(signals) == eng.stats.signals and len(signals) % 2 == 0
    counted = eng.stats.as_dict()
    assert sum(counted.values()) - counted["stale"] - counted["signals"] == len(binance_btc)
    assert counted["bbo"] == sum(type(e) is BBO for e in binance_btc)
    # The emission policy keeps the topic far quieter than the ticks.
    assert len(signals) < counted["bbo"] / 50


def test_binance_spot_perp_basis_is_a_few_bps_and_taker_fees_eat_it(binance_btc):
    _, signals = replay_checked(binance_btc, cached_fees_config())
    # Mid basis (perp - spot) from each emission's two directions: with a = spot, b = perp,
    # gross(a->b) = bid_b/ask_a - 1 and gross(b->a) = bid_a/ask_b - 1, so their half
    # difference is the basis less the half spreads' mismatch: about the basis.
    basis = sorted(
        (s.gross_edge_bps - r.gross_edge_bps) / 2
        for s, r in zip(signals[::2], signals[1::2], strict=True)
        if s.buy_venue == "binance"
    )
    median = basis[len(basis) // 2]
    assert 1 < abs(median) < 10
    assert all(abs(b) < 25 for b in basis)
    # VIP 0 taker fees (10 bps spot + 5 bps perp) exceed every gross edge seen.
    assert max(s.gross_edge_bps for s in signals) > 0
    assert max(s.net_edge_bps for s in signals) < 0


def test_binance_stale_spot_quotes_are_never_used_across_an_injected_gap(binance_btc):
    start = binance_btc[0].receive_ts + 120 * SECOND
    end = start + 5 * SECOND
    gapped = [e for e in binance_btc
              if not (e.venue == "binance" and start <= e.receive_ts < end)]
    config = cached_fees_config(max_age_ns=SECOND // 2)
    eng, signals = replay_checked(gapped, config)  # checks every signal's ages too
    assert eng.stats.stale > 0
    last_spot = max(e.receive_ts for e in gapped if e.venue == "binance" and e.receive_ts < start)
    in_gap = [s for s in signals if last_spot + config.max_age_ns < s.ts < end]
    assert in_gap == []
    assert any(s.ts >= end for s in signals)  # and they come back once spot does


# -- the flow ---------------------------------------------------------------------------------


def run_flow(events: list, config: ArbitrageConfig, chunk_size: int) -> list:
    out: list = []
    flow = build_arbitrage_flow(ChunkedSource(events, chunk_size), CallbackSink(out.extend),
                                config)
    run_main(flow)
    return out


def test_flow_on_all_binance_recordings_equals_the_engine_and_passes_dead_letters(shared_data):
    events = list(Recordings(BINANCE_FILES).events())
    dead = DeadLetter(source="binance", reason="bad json", raw="{", receive_ts=1)
    garbage = b"\x00not an event"
    unknown = bbo("nowhere", "BTC/USDT", "1", "2", events[100].receive_ts)
    events[100:100] = [dead, garbage, unknown]
    config = cached_fees_config()
    direct = feed(ArbitrageEngine(config), events)
    out = run_flow(events, config, chunk_size=512)
    signals = [e for e in out if type(e) is ArbSignal]
    # Groups run in separate states, so only the order within a group is the stream's.
    assert sorted(map(msgspec.json.encode, out)) == sorted(map(msgspec.json.encode, direct))
    for group in ("BTC/USDT", "ETH/USDT"):
        def of(items, group=group):
            return [s for s in items if type(s) is ArbSignal and s.buy_symbol.startswith(group)]
        assert of(out) == of(direct) != []
    assert {s.buy_symbol.split(":")[0] for s in signals} == {"BTC/USDT", "ETH/USDT"}
    assert [e for e in out if type(e) is DeadLetter and e.reason == "bad json"] == [dead]
    (letter,) = [e for e in out if type(e) is DeadLetter and e.source == "arbitrage"]
    assert letter.source == "arbitrage" and "bytes" in letter.reason


def test_flow_results_do_not_depend_on_the_chunk_size(binance_btc):
    events = binance_btc[:20_000]
    config = cached_fees_config()
    assert run_flow(events, config, chunk_size=7) == run_flow(events, config, chunk_size=4096)


# -- cryptofeed recordings: L2-only venues -----------------------------------------------------


def cryptofeed_events(*exchanges: str, symbol: str | None = None) -> list:
    files = [next(CRYPTOFEED_DIR.glob(f"{name}.ws.*")) for name in exchanges]
    events = Recordings(files).events()
    return [e for e in events if symbol is None or getattr(e, "symbol", None) == symbol]


L2_FEES = {"bitstamp": Decimal("0.004"), "gemini": Decimal("0.004"), "okx": Decimal("0.001")}


def test_cryptofeed_bat_btc_across_bitstamp_and_gemini_recorded_months_apart(shared_data):
    # BAT/BTC is the only asset two cryptofeed recordings share (Gemini 2021-06, Bitstamp
    # 2022-01): replayed as recorded, one side is always months old, so nothing is joined.
    eng = ArbitrageEngine(cached_fees_config(venue_taker_fees=L2_FEES, max_age_ns=10 * SECOND))
    assert feed(eng, cryptofeed_events("BITSTAMP", "GEMINI")) == []
    assert eng.stats.stale > 0 and eng.stats.book > 0


def test_cryptofeed_bat_btc_l2_books_joined_when_aligned_in_time(shared_data):
    # Gemini's session shifted onto Bitstamp's: real L2 books, synthetic simultaneity. The
    # prices are six months apart, so the edges are large; what is checked is the join.
    bitstamp = cryptofeed_events("BITSTAMP", symbol="BAT/BTC")
    gemini = cryptofeed_events("GEMINI", symbol="BAT/BTC")
    shift = bitstamp[0].receive_ts - gemini[0].receive_ts
    gemini = [msgspec.structs.replace(e, receive_ts=e.receive_ts + shift) for e in gemini]
    config = cached_fees_config(venue_taker_fees=L2_FEES, max_age_ns=10 * SECOND)
    eng = ArbitrageEngine(config)
    books = {"bitstamp": OrderBook("bitstamp", "BAT/BTC"), "gemini": OrderBook("gemini", "BAT/BTC")}
    signals = []
    for event in heapq.merge(bitstamp, gemini, key=lambda e: e.receive_ts):
        books[event.venue].apply(event)
        for signal in eng.on_event(event):
            buy_ask = books[signal.buy_venue].best_ask()
            sell_bid = books[signal.sell_venue].best_bid()
            assert (signal.buy_price, signal.sell_price) == (buy_ask[0], sell_bid[0])
            assert signal.size == min(buy_ask[1], sell_bid[1])
            assert_edges(signal, Decimal("0.004"), Decimal("0.004"))
            signals.append(signal)
    assert len(signals) >= 10
    assert {s.kind for s in signals} == {"cross_venue"}
    assert eng.stats.bbo == 0 and eng.stats.book == len(bitstamp) + len(gemini)


def test_cryptofeed_okx_dated_and_inverse_contracts_are_counted_not_joined(shared_data):
    eng = ArbitrageEngine(cached_fees_config(venue_taker_fees=L2_FEES))
    events = cryptofeed_events("OKX")
    assert feed(eng, events) == []  # BTC/USDT spot has no partner in this recording
    unsupported = sum(e.symbol in ("BTC/USD:BTC-220527", "UNI/USD:UNI") for e in events)
    assert eng.stats.unsupported_symbol == unsupported > 0
