"""`quoteflow backtest`: recorded traffic through the quote flow, the executor and the paper
venue (`connectors.paper.trading.PaperTrader`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from connectors.replay.event_cache import CachedRecordings, open_recordings
from quoteflow.progress import chunk_tracker, event_progress
from quoteflow.report import print_summary, write_charts
from quoteflow.results import write_fills
from quoteflow.runner import require_market_events, run_paper_trading
from quoteflow.sessions import TradingOptions


def run_backtest(
    paths: Sequence[Path],
    options: TradingOptions,
    *,
    json_out: Path | None = None,
    report_dir: Path | None = None,
    chunk_size: int = 512,
    console: Console | None = None,
    fills_out: Path | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """`cache_dir`: decoded events are read from (or written to) the event cache there."""
    console = console or Console(stderr=True)
    recordings = open_recordings(paths, cache_dir)
    with event_progress(console) as progress:
        task = progress.add_task("backtest", total=None, rate="")
        outcome = run_paper_trading(
            recordings.events(),
            options,
            chunk_size=chunk_size,
            on_chunk=chunk_tracker(progress, task),
        )
    require_market_events(outcome)  # before any output: no result file of nothing
    summary = {
        **outcome.summary,
        "strategy": options.strategy,
        "params": dict(options.params),
        "replay": recordings.stats(),
    }
    print_summary(summary, f"backtest: {options.strategy}", console)
    if isinstance(recordings, CachedRecordings):
        written = "written" if recordings.path.is_file() else "not written"
        state = "read" if recordings.hit else written
        console.print(f"event cache: {state} {recordings.path}")
    if fills_out is not None:
        count = write_fills(outcome.results, fills_out)
        console.print(f"fills: {fills_out} ({count})")
    if report_dir is not None:
        for chart in write_charts(outcome.results, report_dir):
            console.print(f"chart: {chart}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, default=str))
        console.print(f"summary: {json_out}")
    return summary
