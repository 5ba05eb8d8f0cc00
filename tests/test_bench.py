"""The benchmarks run end to end and write their figures and charts (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from bench import backtest_throughput, raw_to_result, tick_to_intent
from tests.conftest import SHARED_DATA

SPOT_ETH = SHARED_DATA / "binance" / "spot" / "ethusdt_20240808.gz"


def _args(tmp_path) -> list[str]:
    return [
        "--data", str(SPOT_ETH), "--strategy", "ladder", "--repeat", "1", "--out", str(tmp_path)
    ]


@pytest.mark.slow
def test_backtest_throughput_reports_every_stage(shared_data, tmp_path):
    summary = backtest_throughput.main(_args(tmp_path))
    assert list(summary["results"]) == ["decode", "flow ladder", "end_to_end ladder"]
    assert {r["events"] for r in summary["results"].values()} == {33_618}
    assert summary["machine"]["cores"] >= 1
    assert json.loads((tmp_path / "backtest_throughput.json").read_text()) == summary
    assert (tmp_path / "backtest_throughput.png").stat().st_size > 0


@pytest.mark.slow
def test_backtest_throughput_times_the_event_cache(shared_data, tmp_path):
    summary = backtest_throughput.main([*_args(tmp_path), "--cached"])
    assert list(summary["results"]) == [
        "decode", "cache load", "flow ladder", "end_to_end ladder", "end_to_end_cached ladder"
    ]
    assert {r["events"] for r in summary["results"].values()} == {33_618}
    assert len(list((tmp_path / "event_cache").glob("*.npz"))) == 1


@pytest.mark.slow
def test_tick_to_intent_times_every_intent(shared_data, tmp_path):
    summary = tick_to_intent.main([*_args(tmp_path), "--baseline", str(tmp_path)])
    flow, step = summary["results"]["flow ladder"], summary["results"]["step ladder"]
    # Both measure the same intents: the flow's path and the step alone.
    assert flow["count"] == step["count"] > 0
    assert step["p50"] <= step["p99"] <= step["p99.9"] <= step["max_us"]
    assert (tmp_path / "tick_to_intent.png").stat().st_size > 0


@pytest.mark.slow
def test_raw_to_result_times_both_sides_in_rounds(shared_data, tmp_path):
    """hftbacktest's side runs in .venv-bench (`./dev bench`); without it, quoteflow's alone."""
    peer = raw_to_result.fidelity.BENCH_PYTHON.exists()
    summary = raw_to_result.main([
        "--data", str(SPOT_ETH), "--rounds", "2", "--out", str(tmp_path),
        *([] if peer else ["--no-hftbacktest"]),
    ])
    result = summary["results"][f"spot/{SPOT_ETH.name}"]
    rounds = result["rounds"]
    assert result["events"] == 33_618 and len(rounds["quoteflow"]) == 2
    assert result["quoteflow_cpu"] == min(r["cpu"] for r in rounds["quoteflow"])
    assert rounds["untimed_round"]["quoteflow"]["fills"] == result["quoteflow_fills"] > 0
    if peer:
        assert result["hftbacktest_fills"] > 0 and len(rounds["hftbacktest"]) == 2
        assert result["hftbacktest_cpu"] == pytest.approx(
            result["hftbacktest_convert_cpu"] + result["hftbacktest_backtest_cpu"]
        )
        assert result["ratio"] == pytest.approx(result["quoteflow_cpu"] / result["hftbacktest_cpu"])
    assert json.loads((tmp_path / "raw_to_result.json").read_text()) == summary


def test_bad_options_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        backtest_throughput.main(["--data", str(tmp_path / "missing.gz")])
    assert exit_info.value.code == 2
    assert "is not a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tick_to_intent.main(["--data", str(SPOT_ETH), "--repeat", "0"])
    with pytest.raises(SystemExit) as exit_info:
        raw_to_result.main(["--data", str(SPOT_ETH), "--rounds", "0"])
    assert exit_info.value.code == 2
