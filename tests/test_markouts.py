"""MarkoutTracker: first mid at or after t + h, signs, pending fills, and real Binance mids."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest

from models.events import Fill
from models.markouts import SECOND_NS, MarkoutTracker, horizon_label
from tests.conftest import SHARED_DATA

D = Decimal


def fill(ts: int, side: str, price: str, size: str = "1") -> Fill:
    return Fill(
        venue="sim", symbol="SIM/USD", ts=ts, client_order_id="c", trade_id=str(ts), side=side,
        price=D(price), size=D(size), fee=D(0), fee_currency="USD", liquidity="maker",
    )


def test_markout_uses_the_first_mid_at_or_after_the_horizon_with_the_fill_side_sign():
    tracker = MarkoutTracker(horizons_ns=(SECOND_NS, 5 * SECOND_NS))
    tracker.on_fill(fill(0, "buy", "100.00", "2"), D("100.01"))
    tracker.on_fill(fill(0, "sell", "100.02", "1"), D("100.01"))
    tracker.on_mid(SECOND_NS - 1, D("999"))  # before the horizon: ignored
    tracker.on_mid(SECOND_NS + 7, D("100.05"))  # first at/after 1 s
    tracker.on_mid(2 * SECOND_NS, D("50"))
    results = tracker.results()
    assert list(results) == ["at_fill", "1s", "5s"]
    at_fill, one, five = results.values()
    assert at_fill["sum"] == D("0.02") + D("0.01") and at_fill["count"] == 2
    assert one["sum"] == D("0.10") + D("-0.03") and one["mean"] == D("0.035")
    assert one["mean_bps"] == pytest.approx((0.05 / 100.00 - 0.03 / 100.02) * 10_000 / 2)
    assert (five["count"], five["pending"], five["mean"]) == (0, 2, None)


def test_an_exact_hit_on_the_horizon_counts():
    tracker = MarkoutTracker(horizons_ns=(10,))
    tracker.on_fill(fill(5, "sell", "10"), D("10"))
    tracker.on_mid(15, D("9"))
    assert tracker.results()["10ns"]["sum"] == 1


def test_bad_horizons_and_out_of_order_fills_are_refused():
    with pytest.raises(ValueError):
        MarkoutTracker(horizons_ns=())
    with pytest.raises(ValueError):
        MarkoutTracker(horizons_ns=(0, SECOND_NS))
    with pytest.raises(ValueError):
        MarkoutTracker(horizons_ns=(SECOND_NS, SECOND_NS))
    tracker = MarkoutTracker()
    tracker.on_fill(fill(10, "buy", "1"), D(1))
    with pytest.raises(ValueError):
        tracker.on_fill(fill(9, "buy", "1"), D(1))


def test_horizon_labels_use_the_largest_unit_that_divides():
    labels = [horizon_label(h) for h in (0, SECOND_NS, 250_000_000, 2_000, 1_500)]
    assert labels == ["at_fill", "1s", "250ms", "2us", "1500ns"]


def test_markouts_on_real_binance_mids_match_a_direct_lookup(shared_data):
    """Pretend to buy at the ask on every 1000th bookTicker; check against a brute-force scan."""
    path = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
    mids: list[tuple[int, Decimal]] = []
    asks: list[Decimal] = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            if "bookTicker" not in line:
                continue
            ts, raw = line.split(" ", 1)
            data = json.loads(raw)["data"]
            mids.append((int(ts), (D(data["b"]) + D(data["a"])) / 2))
            asks.append(D(data["a"]))
    tracker = MarkoutTracker()
    fills = []
    for i, (ts, mid) in enumerate(mids):
        if i % 1000 == 0:
            fills.append(fill(ts, "buy", str(asks[i]), "0.01"))
            tracker.on_fill(fills[-1], mid)
        tracker.on_mid(ts, mid)
    results = tracker.results()
    for horizon in (SECOND_NS, 5 * SECOND_NS, 30 * SECOND_NS):
        expected, pending = D(0), 0
        for f in fills:
            later = next((m for t, m in mids if t >= f.ts + horizon), None)
            if later is None:
                pending += 1
            else:
                expected += (later - f.price) * f.size
        stats = results[horizon_label(horizon)]
        assert (stats["sum"], stats["pending"]) == (expected, pending)
        assert stats["count"] + pending == len(fills)
    assert results["30s"]["pending"] > 0  # the recording ends before the last fills' 30 s
    assert results["at_fill"]["mean"] < 0  # buying at the ask costs half the spread
