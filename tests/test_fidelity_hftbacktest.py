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
    assert fidelity.match_fills(ours, theirs, unmatched=True) == {
        "quoteflow": [1, 2], "hftbacktest": [1, 2],
    }


def test_the_data_as_hftbacktest_reads_it_has_transaction_times_and_no_book_ticker(tmp_path):
    source = tmp_path / "usdm" / "x.gz"
    source.parent.mkdir()
    ns = "1723161255030314667 "  # each line: the receive time (ns), a space, the message
    lines = [
        ns + '{"stream":"x@depth@0ms","data":{"e":"depthUpdate","E":1005,"T":1001,"b":[]}}',
        ns + '{"stream":"x@bookTicker","data":{"e":"bookTicker","E":1006,"T":1002}}',
        ns + '{"stream":"x@depth","data":{"e":"depthUpdate","E":1007,"b":[]}}',
    ]
    with gzip.open(source, "wt") as file:
        file.write("\n".join(lines) + "\n")
    target = fidelity.as_hftbacktest_reads_it(source, tmp_path / "out")
    assert target.parent.name == "usdm" and target.name == source.name
    with gzip.open(target, "rt") as file:
        read = [(line[:20], json.loads(line[20:])["data"]) for line in file]
    assert [(ts, data["E"]) for ts, data in read] == [(ns, 1001), (ns, 1007)]
    with gzip.open(fidelity.without_book_ticker(source, tmp_path / "out"), "rt") as file:
        assert [line.rstrip("\n") for line in file] == [lines[0], lines[2]]


def test_quoteflow_gets_hftbacktests_request_budget(tmp_path):
    """None: hftbacktest has none, so a budget no requote reaches; else ccxt's kind."""
    from connectors.paper.config import PaperConfig, paper_settings
    from quoteflow.config import load_config

    unlimited = load_config(fidelity.quoteflow_config({"rate_limit_ms": None}, tmp_path)).paper
    assert (unlimited.rate_limit_ms, unlimited.rate_limit_capacity) == fidelity.UNLIMITED_BUDGET
    ccxt = load_config(fidelity.quoteflow_config({"rate_limit_ms": 50.0}, tmp_path)).paper
    assert paper_settings(ccxt).rate_limit_ms == 50.0 == paper_settings(PaperConfig()).rate_limit_ms


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
    assert result["settings"]["rate_limit_ms"] is None  # hftbacktest's budget: none
    for run in ("quoteflow", "quoteflow_l2_touch", "quoteflow_peer_view"):
        assert result[run]["fills"] >= 0 and result[run]["missing_flags"] == []
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
    # every fill only one engine made is traced to the requote that decided its order: the
    # two requote on one grid
    for suffix in ("", "_l2_touch"):
        matching, causes = result[f"fill_matching{suffix}"], result[f"attribution{suffix}"]
        for engine in ("quoteflow", "hftbacktest"):
            counts = causes[f"{engine}_only"]
            assert counts["unknown_requote"] == 0
            assert counts["touch"] + counts["same_quote"] == (
                matching[f"{engine}_only_buys"] + matching[f"{engine}_only_sells"]
            )
    # on the L2 touch both engines quote the same prices at every requote
    causes = result["attribution_l2_touch"]
    assert causes["quoteflow_only"]["touch"] == causes["hftbacktest_only"]["touch"] == 0
    assert summary["machine"]["hftbacktest"] == "2.4.4"
