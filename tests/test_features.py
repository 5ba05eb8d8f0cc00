"""Features by hand on small synthetic books and trades."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pytest

from models.events import BBO, BookDelta, BookSnapshot, Trade
from models.features import FeatureConfig, MarketFeatures, TradeFlow

S = 1_000_000_000
MS = 1_000_000
VENUE, SYMBOL = "binance", "BTC/USDT"
CONFIG = FeatureConfig(
    depth_levels=2, trade_window_ns=S, return_horizons_ns=(200 * MS, 500 * MS)
)


def bbo(ts: int, bid: str, bid_size: str, ask: str, ask_size: str) -> BBO:
    return BBO(
        venue=VENUE, symbol=SYMBOL, exchange_ts=ts, receive_ts=ts,
        bid_price=D(bid), bid_size=D(bid_size), ask_price=D(ask), ask_size=D(ask_size),
    )


def trade(ts: int, size: str, side: str, price: str = "100") -> Trade:
    return Trade(
        venue=VENUE, symbol=SYMBOL, exchange_ts=ts, receive_ts=ts,
        price=D(price), size=D(size), side=side,
    )


def snapshot(ts: int, seq: int, bids: list, asks: list) -> BookSnapshot:
    return BookSnapshot(
        venue=VENUE, symbol=SYMBOL, exchange_ts=ts, receive_ts=ts, seq=seq,
        bids=[(D(p), D(s)) for p, s in bids], asks=[(D(p), D(s)) for p, s in asks],
    )


def delta(ts: int, first: int, last: int, bids: list, asks: list) -> BookDelta:
    return BookDelta(
        venue=VENUE, symbol=SYMBOL, exchange_ts=ts, receive_ts=ts, seq=last, first_seq=first,
        bids=[(D(p), D(s)) for p, s in bids], asks=[(D(p), D(s)) for p, s in asks],
    )


def features(interval_ns: int = 100 * MS) -> MarketFeatures:
    return MarketFeatures(VENUE, SYMBOL, CONFIG, interval_ns)


def sample(state: MarketFeatures, ts: int) -> dict[str, float]:
    touch = state.touch()
    assert touch is not None
    return state.sample(ts, touch)


def test_touch_features_by_hand():
    state = features()
    state.apply(bbo(1, "99", "3", "101", "1"))
    x = sample(state, 100 * MS)
    # mid 100, spread 2 → 200 bps; imbalance (3−1)/4; microprice (101·3 + 99·1)/4 = 100.5.
    assert x["spread_bps"] == pytest.approx(200.0)
    assert x["imbalance_l1"] == pytest.approx(0.5)
    assert x["imbalance_depth"] == pytest.approx(0.5)  # no L2 book: the touch again
    assert x["microprice_bps"] == pytest.approx(50.0)
    assert x["trade_flow"] == 0.0
    assert x["ret_200ms_bps"] == 0.0 and x["ret_500ms_bps"] == 0.0
    assert x["volatility_bps"] == 0.0


def test_no_touch_before_both_sides_are_known():
    state = features()
    assert state.touch() is None
    state.apply(trade(1, "1", "buy"))
    assert state.touch() is None
    state.apply(snapshot(2, 10, [("99", "1")], []))
    assert state.touch() is None  # a one-sided book is no touch


def test_depth_imbalance_over_the_configured_levels():
    state = features()
    state.apply(snapshot(1, 10, [("99", "1"), ("98", "5"), ("97", "100")],
                         [("101", "2"), ("102", "2"), ("103", "100")]))
    x = sample(state, 100 * MS)
    # Best two levels: bids 1 + 5 = 6, asks 2 + 2 = 4; the third level is outside depth 2.
    assert x["imbalance_depth"] == pytest.approx((6 - 4) / 10)
    assert x["imbalance_l1"] == pytest.approx((1 - 2) / 3)


def test_the_fresher_of_bbo_and_book_is_the_touch():
    state = features()
    state.apply(snapshot(1, 10, [("99", "1")], [("101", "1")]))
    state.apply(bbo(2, "99.5", "1", "100.5", "1"))
    assert state.touch().bid_price == D("99.5")
    state.apply(delta(3, 11, 11, [("99.8", "2")], []))
    touch = state.touch()
    assert (touch.bid_price, touch.bid_size, touch.ask_price) == (D("99.8"), D("2"), D("101"))


def test_a_book_that_lost_sync_falls_back_to_the_bbo():
    state = features()
    state.apply(bbo(1, "99.5", "1", "100.5", "1"))
    state.apply(snapshot(2, 10, [("99", "1")], [("101", "1")]))
    state.apply(delta(3, 15, 16, [("99.8", "2")], []))  # gap: the book clears itself
    assert state.touch().bid_price == D("99.5")
    x = sample(state, 100 * MS)
    assert x["imbalance_depth"] == x["imbalance_l1"]


def test_trade_flow_window_by_hand():
    flow = TradeFlow(window_ns=S)
    assert flow.imbalance(0) == 0.0
    flow.add(1 * S, D("3"), True)
    flow.add(int(1.5 * S), D("1"), False)
    assert flow.imbalance(int(1.5 * S)) == pytest.approx((3 - 1) / 4)
    # (now − window, now]: the buy at exactly now − window has left.
    assert flow.imbalance(2 * S) == pytest.approx(-1.0)
    assert flow.imbalance(3 * S) == 0.0


def test_trade_flow_sums_are_exact_after_many_trades():
    flow = TradeFlow(window_ns=10)
    for ts in range(1000):
        flow.add(ts, D("0.001"), ts % 3 == 0)
    assert flow.imbalance(10_000) == 0.0
    assert flow._buy == 0 and flow._sell == 0


def test_trade_flow_feature_uses_taker_side():
    state = features()
    state.apply(bbo(1, "99", "1", "101", "1"))
    state.apply(trade(2, "2", "sell"))
    assert sample(state, 100 * MS)["trade_flow"] == pytest.approx(-1.0)


def test_returns_over_grid_horizons_by_hand():
    state = features()
    mids = [100, 101, 102, 103, 104, 105]
    got = []
    for step, mid in enumerate(mids):
        state.apply(bbo(step * 100 * MS - 1, str(mid - 1), "1", str(mid + 1), "1"))
        got.append(sample(state, step * 100 * MS))
    # 200 ms = 2 grid steps back, 500 ms = 5; unknown (0) until the grid is that long.
    assert got[1]["ret_200ms_bps"] == 0.0
    assert got[2]["ret_200ms_bps"] == pytest.approx(math.log(102 / 100) * 1e4)
    assert got[4]["ret_500ms_bps"] == 0.0
    assert got[5]["ret_500ms_bps"] == pytest.approx(math.log(105 / 100) * 1e4)
    assert got[5]["volatility_bps"] > 0.0


def test_restart_forgets_the_grid_history():
    state = features()
    for step, mid in enumerate([100, 110, 120]):
        state.apply(bbo(step, str(mid - 1), "1", str(mid + 1), "1"))
        sample(state, step * 100 * MS)
    state.restart()
    x = sample(state, 10 * S)
    assert x["ret_200ms_bps"] == 0.0
    assert x["volatility_bps"] == 0.0


def test_other_events_are_ignored():
    state = features()
    state.apply(object())
    assert state.touch() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depth_levels": 0},
        {"trade_window_ns": 0},
        {"return_horizons_ns": (S, -1)},
        {"volatility_half_life_s": 0.0},
    ],
)
def test_bad_feature_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)


def test_horizons_off_the_sample_grid_are_refused():
    with pytest.raises(ValueError, match="multiples"):
        MarketFeatures(VENUE, SYMBOL, CONFIG, 300 * MS)
    with pytest.raises(ValueError):
        MarketFeatures(VENUE, SYMBOL, CONFIG, 0)


def test_ofi_and_trade_sign_by_hand():
    state = features()
    state.apply(bbo(1, "99", "1", "101", "1"))
    state.apply(bbo(2, "99", "4", "101", "1"))  # +3 bid at the same price
    state.apply(bbo(3, "99", "4", "100", "2"))  # a better ask of 2: −2
    state.apply(trade(4, "5", "buy"))
    state.apply(trade(5, "1", "sell"))
    state.apply(trade(6, "1", "sell"))
    x = sample(state, 100 * MS)
    # Touch scale: the first sample's touch size, 4 + 2.
    assert x["ofi_l1_100ms"] == pytest.approx((3 - 2) / 6)
    assert x["ofi_depth_100ms"] == pytest.approx(x["ofi_l1_100ms"])  # no book: the touch
    assert x["trade_sign"] == pytest.approx((1 - 2) / 3)  # by count, whereas by volume:
    assert x["trade_flow"] == pytest.approx((5 - 2) / 7)
    assert x["queue_log_ratio"] == pytest.approx(math.log(4 / 2))
    y = sample(state, 200 * MS)
    assert y["ofi_l1_100ms"] == 0.0  # nothing changed in the last step
    assert y["ofi_l1_1000ms"] == pytest.approx(x["ofi_l1_100ms"])


def test_multi_level_ofi_between_samples():
    state = features()
    state.apply(snapshot(1, 10, [("99", "1"), ("98", "1")], [("101", "1"), ("102", "1")]))
    sample(state, 100 * MS)
    state.apply(delta(150 * MS, 11, 11, [("98", "3")], [("102", "0"), ("103", "2")]))
    x = sample(state, 200 * MS)
    # Level 2: bid 98 size 1 → 3 (+2); ask 102 (1) → 103 (2): the ask rose, +1 old size.
    # Level 1 unchanged. Typical level size: EWMA from 1.0 towards (1+3+1+2)/4.
    assert x["ofi_depth_100ms"] * state._scales.level == pytest.approx(3.0)


def test_a_sample_never_sees_anything_after_its_instant(shared_data):
    """Samples up to T are the same whatever the recording does after T.

    The real recording is cut at T and continued by an absurd event just after T (which
    only triggers the sample): every sample stamped <= T must be identical.
    """
    from itertools import islice

    from connectors.replay.recordings import Recordings
    from models.events import DeadLetter
    from models.features import GridSampler

    path = shared_data / "binance" / "spot" / "btcusdt_20240808.gz"
    events = [e for e in islice(Recordings([path]).events(), 6000)
              if not isinstance(e, DeadLetter)]

    def run(stream):
        sampler = GridSampler("binance", "BTC/USDT", FeatureConfig(), 100 * MS, 60 * S)
        return [s for e in stream for s in sampler.on_event(e)]

    full = run(events)
    for cut in (len(events) // 3, len(events) // 2, len(events) - 10):
        t = full[0].ts + (events[cut].receive_ts - full[0].ts) // (100 * MS) * (100 * MS)
        past = [e for e in events if e.receive_ts <= t]
        absurd = bbo(t + 1, "1", "1000", "2", "1000")  # same venue and symbol
        cut_samples = run([*past, absurd])
        expected = [s for s in full if s.ts <= t]
        assert cut_samples == expected and expected[-1].ts == t
