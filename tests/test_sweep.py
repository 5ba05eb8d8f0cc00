"""`quoteflow sweep` on a short slice of a shared recording: parallel runs equal to single
backtests, the JSON/CSV table and chart, resuming after an interruption, bad input; and
`quoteflow suggest`'s search going through the same engine."""

from __future__ import annotations

import csv
import json
import re

import pytest
from typer.testing import CliRunner

from quoteflow import sweep_report
from quoteflow.backtest import run_backtest
from quoteflow.cli import app
from quoteflow.sessions import TradingOptions
from quoteflow.suggest import backtest, load_events, split_events
from quoteflow.sweep import Job, parse_grid, plan_points, run_jobs, sweep
from tests.recording_slices import slice_recording

LINES = 9000  # about 80 s of Binance spot ETHUSDT: a few seconds per backtest
GRID = ["--grid", "gamma=0.01,1", "--grid", "order_size=0.01"]


@pytest.fixture(scope="module")
def recording_slice(shared_data, tmp_path_factory):
    return slice_recording(shared_data / "binance" / "spot" / "ethusdt_20240808.gz",
                           tmp_path_factory.mktemp("slice") / "ethusdt_slice.gz", LINES)


def _sweep(args: list[str]):
    return CliRunner().invoke(app, ["sweep", "--strategy", "glft", *args])


def _says(output: str, text: str) -> bool:
    """`text` in the CLI's output, read through Typer's error box: the box wraps a message at
    its width, mid-word, where a longer temporary path (a pytest-xdist worker's) moves it."""
    def squeezed(s: str) -> str:
        return re.sub(r"[\s│╭╮╰╯─]", "", s)
    return squeezed(text) in squeezed(output)


def test_a_grid_on_two_workers_equals_single_backtests(recording_slice, tmp_path):
    out = tmp_path / "sweep"
    result = _sweep([*GRID, "--data", str(recording_slice), "--out", str(out), "--workers", "2",
                     "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "results.json").read_text())
    runs = table["runs"]
    assert table["strategy"] == "glft" and table["grid"] == {
        "gamma": ["0.01", "1"], "order_size": ["0.01"]}
    assert [r["params"] for r in runs] == [{"gamma": "0.01", "order_size": "0.01"},
                                           {"gamma": "1", "order_size": "0.01"}]
    assert len(list((out / "runs").glob("*.json"))) == 2 and (out / "sweep.png").stat().st_size
    assert any(r["fills"] > 0 for r in runs)
    for run in runs:
        single = run_backtest([recording_slice], TradingOptions(strategy="glft",
                                                                params=run["params"]))
        for name in sweep_report.TOTALS:
            assert run[name] == single[name], name
        assert run["markouts"] == sweep_report.markouts_over_instruments(single["markouts"])
    with (out / "results.csv").open() as file:
        lines = list(csv.DictReader(file))
    assert [line["run_id"] for line in lines] == [r["run_id"] for r in runs]
    for line, run in zip(lines, runs, strict=True):
        assert (line["gamma"], line["order_size"]) == (run["params"]["gamma"], "0.01")
        assert float(line["net_pnl"]) == run["net_pnl"] and int(line["fills"]) == run["fills"]
        one_second = run["markouts"]["1s"]
        assert int(line["markout_1s_count"]) == one_second["count"]
        if one_second["count"]:
            assert float(line["markout_1s_bps"]) == pytest.approx(one_second["mean_bps"])


def test_an_interrupted_sweep_resumes_where_it_stopped(recording_slice, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    options = TradingOptions(strategy="glft")
    grid = ["gamma=0.01,0.1,1", "order_size=0.01"]
    write_run = sweep_report.write_run

    def stop_after_first(out_dir, row):
        write_run(out_dir, row)
        raise KeyboardInterrupt  # as Ctrl-C after the first completed run

    monkeypatch.setattr(sweep_report, "write_run", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        sweep("glft", grid, [recording_slice], out, options, {}, workers=2)
    monkeypatch.setattr(sweep_report, "write_run", write_run)
    (first,) = (out / "runs").glob("*.json")
    written = first.stat().st_mtime_ns
    assert not (out / "results.json").exists()

    ran: list[str] = []

    def counting(out_dir, row):
        ran.append(row["run_id"])
        write_run(out_dir, row)

    monkeypatch.setattr(sweep_report, "write_run", counting)
    table = sweep("glft", grid, [recording_slice], out, options, {}, workers=2)
    assert len(table["runs"]) == 3 and len(ran) == 2 and first.stem not in ran
    assert first.stat().st_mtime_ns == written
    assert [r["params"]["gamma"] for r in table["runs"]] == ["0.01", "0.1", "1"]
    ran.clear()
    sweep("glft", grid, [recording_slice], out, options, {}, workers=2)  # all done: no run
    assert ran == []
    # Other engine flags are other runs: nothing is reused across them.
    assert sweep_report.read_run(out, first.stem) is not None
    other = sweep("glft", grid[:1], [recording_slice], out, options, {"requote_ms": 100},
                  workers=1)
    assert {r["run_id"] for r in other["runs"]}.isdisjoint(r["run_id"] for r in table["runs"])


def test_random_search_draws_the_same_points_for_a_seed():
    grid = parse_grid(["gamma=0.01..1", "order_size=0.01,0.02"])
    points = plan_points("glft", grid, samples=5, seed=3)
    assert points == plan_points("glft", grid, samples=5, seed=3)
    assert points != plan_points("glft", grid, samples=5, seed=4)
    assert all(0.01 <= float(p["gamma"]) <= 1 and p["order_size"] in ("0.01", "0.02")
               for p in points)
    levels = plan_points("ladder", parse_grid(["levels=1..3"]), samples=20, seed=0)
    assert sorted(p["levels"] for p in levels) == ["1", "2", "3"]  # ints, duplicates dropped


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "gamma"], "expected NAME=V1,V2"),
    (["--grid", "gamma=0.1,"], "expected NAME=V1,V2"),
    (["--grid", "nope=1"], "unknown parameter nope"),
    (["--grid", "gamma=-1"], "gamma"),
    (["--grid", "gamma=0.01..1"], "needs --random"),
    (["--grid", "gamma=1..0.1", "--random", "2"], "LOW is above HIGH"),
    (["--grid", "gamma=0.1", "--grid", "gamma=1"], "given twice"),
    (["--grid", "gamma=0.1", "--strategy", "nope"], "unknown strategy"),
])
def test_bad_input_is_one_line_and_exit_2(recording_slice, tmp_path, args, message):
    result = CliRunner().invoke(app, ["sweep", "--data", str(recording_slice),
                                      "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert _says(result.output, message) and "Traceback" not in result.output
    assert not (tmp_path / "out" / "runs").exists()


def test_a_missing_or_unreplayable_recording_is_exit_2(shared_data, tmp_path):
    result = _sweep(["--grid", "gamma=0.1", "--data", str(tmp_path / "none.gz")])
    assert result.exit_code == 2 and _says(result.output, "does not exist")
    # A cryptofeed session without its start-up file fails inside a worker process.
    session = tmp_path / "KRAKEN.ws.50.0"
    session.write_bytes((shared_data / "cryptofeed" / "KRAKEN.ws.50.0").read_bytes())
    result = _sweep(["--grid", "gamma=0.1,1", "--data", str(session), "--workers", "2",
                     "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and _says(result.output, "KRAKEN.0")  # the missing file
    assert "Traceback" not in result.output


def test_suggest_searches_through_the_sweep_engine(recording_slice):
    """The engine's windowed runs (what `quoteflow suggest` fits on) equal in-process
    backtests of `split_events`' fit part."""
    fit, _, cut = split_events(load_events([recording_slice]), 0.6)
    candidates = [("glft", {"gamma": "0.1", "order_size": "0.01"}), ("ladder", {})]
    jobs = [Job(str(i), name, tuple(params.items()), (str(recording_slice),), until_ns=cut)
            for i, (name, params) in enumerate(candidates)]
    summaries = run_jobs(jobs, TradingOptions(strategy="ladder"), workers=2)
    for job, (name, params) in zip(jobs, candidates, strict=True):
        expected = backtest(fit, name, params)
        assert summaries[job.run_id]["events"] == len(fit)
        assert (summaries[job.run_id]["net_pnl"], summaries[job.run_id]["fills"]) == (
            expected["net_pnl"], expected["fills"])
