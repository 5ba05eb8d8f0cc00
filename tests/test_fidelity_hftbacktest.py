"""The fidelity harness (bench/fidelity_hftbacktest.py) and the strategy it runs.

The quoteflow half runs `quoteflow backtest` on a two-minute slice of a real Binance spot
recording. The hftbacktest half needs hftbacktest, which cannot be installed beside
quoteflow (it pins numpy < 2.3, quoteflow 2.4.6): it lives in `.venv-bench`, made by
`./dev bench`, not by `./dev test`; without it that half is skipped. No timing is asserted.
"""

from __future__ import annotations

import doctest
import gzip
import json
from itertools import islice

import pytest

import models.strategies.fixed_offset
from bench import fidelity_hftbacktest as fidelity
from models.strategies import build_strategy
from models.strategies.base import MarketState
from tests.conftest import SHARED_DATA

SPOT_BTC = SHARED_DATA / "binance" / "spot" / "btcusdt_20240808.gz"


def test_the_fixed_offset_strategy_doctest():
    assert doctest.testmod(models.strategies.fixed_offset).failed == 0


@pytest.mark.parametrize(("offset", "bid", "ask"), [(0, "61837.63", "61837.64"),
                                                    (3, "61837.60", "61837.67")])
def test_fixed_offset_quotes_land_on_the_grid_at_the_offset(offset, bid, ask):
    from decimal import Decimal

    from models.instrument import Instrument

    strategy = build_strategy(
        "fixed-offset", {"offset_ticks": str(offset), "order_size": "0.001", "tick_size": "0.01"}
    )
    state = MarketState(mid=61837.635, best_bid=61837.63, best_ask=61837.64, inventory=0.0,
                        sigma=0.0, A=0.0, k=0.0, time_left=None)
    quotes = strategy.quote(state)
    grid = Instrument(venue="binance", symbol="BTC/USDT", base="BTC", quote="USDT",
                      tick_size=Decimal("0.01"), step_size=Decimal("0.00001"))
    # the quote flow rounds bids down and asks up: the half tick inside keeps float error out
    assert str(grid.round_price(quotes.bids[0].price, "buy")) == bid
    assert str(grid.round_price(quotes.asks[0].price, "sell")) == ask


def test_fixed_offset_rejects_a_negative_offset():
    with pytest.raises(ValueError, match="offset_ticks"):
        build_strategy("fixed-offset", {"offset_ticks": "-1"})


def test_fills_are_matched_by_side_price_and_time():
    ours = [[1_000, 1, 10.0], [5_000_000_000, -1, 11.0], [9_000_000_000, 1, 10.0]]
    theirs = [[1_050_000, 1, 10.0], [5_000_000_000, -1, 11.1], [7_000_000_000, -1, 11.0]]
    assert fidelity.match_fills(ours, theirs) == {
        "both_buys": 1, "both_sells": 0, "quoteflow_only_buys": 1, "quoteflow_only_sells": 1,
        "hftbacktest_only_buys": 0, "hftbacktest_only_sells": 2,
    }


@pytest.fixture
def spot_slice(shared_data, tmp_path):
    """The first 12,000 lines (about two minutes) of the spot recording, in a spot/ folder."""
    path = tmp_path / "spot" / SPOT_BTC.name
    path.parent.mkdir()
    with gzip.open(SPOT_BTC, "rt") as source, gzip.open(path, "wt") as sliced:
        sliced.writelines(islice(source, 12_000))
    return path


def test_the_quoteflow_half_runs_on_a_slice(spot_slice, tmp_path):
    out = tmp_path / "out"
    summary = fidelity.main(["--data", str(spot_slice), "--out", str(out), "--no-hftbacktest"])
    result = summary["results"][f"spot/{spot_slice.name}"]
    assert result["hftbacktest"] is None
    assert result["settings"]["tick_size"] == 0.01 and result["settings"]["requote_ms"] == 100
    # both start when quoteflow's estimators are ready: seconds in, well before the end
    assert 1e9 < result["settings"]["start_offset_ns"] < 60e9
    ours = result["quoteflow"]
    assert ours["fills"] >= 0 and ours["missing_flags"] == []
    assert set(result["comparison"]) == {"fills", "volume", "final_position", "net_pnl"}
    assert json.loads((out / "fidelity_hftbacktest.json").read_text()) == summary


@pytest.mark.skipif(not fidelity.BENCH_PYTHON.exists(), reason="no .venv-bench (./dev bench)")
def test_both_halves_run_on_a_slice(spot_slice, tmp_path):
    summary = fidelity.main(["--data", str(spot_slice), "--out", str(tmp_path)])
    result = summary["results"][f"spot/{spot_slice.name}"]
    peer = result["hftbacktest"]
    assert peer["fills"] == peer["buy_fills"] + peer["sell_fills"] == len(peer["fill_records"])
    assert peer["orders_sent"] >= peer["fills"]
    # both conversions of the recording give one L2 touch at every requote
    agreement = result["l2_touch_agreement"]
    assert agreement["samples"] > 500 and agreement["same"] == agreement["samples"]
    matching = result["fill_matching"]
    assert sum(v for k, v in matching.items() if not k.startswith("hftbacktest")) == (
        result["quoteflow"]["fills"]
    )
    assert summary["machine"]["hftbacktest"] == "2.4.4"
