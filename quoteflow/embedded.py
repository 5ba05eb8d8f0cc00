"""`quoteflow run`: the embedded default, no servers and no configuration.

The built-in simulated market feeds the same quote flow and paper venue the backtest uses,
in one process, on an accelerated clock (simulated time runs as fast as the flow does).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from connectors.simulated_market import SimulatedMarket
from models.quote_engine import ModelFallbacks
from quoteflow.progress import chunk_tracker, event_progress
from quoteflow.report import print_summary, write_charts
from quoteflow.results import write_fills
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions


def run_embedded(
    options: TradingOptions,
    *,
    seed: int,
    minutes: float,
    report_dir: Path,
    console: Console,
    fills_out: Path | None = None,
) -> dict:
    market = SimulatedMarket.demo(seed, duration_s=minutes * 60)
    unit_s = market.step_ns / market.dt / 1e9
    options = replace(
        options,
        horizon_end_ns=market.end_ns,
        top_of_book=True,
        # The simulator's true parameters stand in until the estimators have seen enough.
        fallbacks=ModelFallbacks(sigma=market.sigma / unit_s**0.5, A=market.A / unit_s, k=market.k),
    )
    console.print(
        f"simulated market: seed {seed}, {minutes:g} min at {market.step_ns / 1e6:g} ms steps, "
        f"strategy {options.strategy}"
    )
    with event_progress(console, sim_seconds=minutes * 60) as progress:
        task = progress.add_task("trading", total=minutes * 60, rate="")
        outcome = run_paper_trading(
            market.events(),
            options,
            on_chunk=chunk_tracker(progress, task, start_ns=market.start_ns),
        )
    summary = {**outcome.summary, "strategy": options.strategy, "seed": seed, "minutes": minutes}
    print_summary(summary, f"quoteflow run: {options.strategy} on the simulated market", console)
    if fills_out is not None:
        console.print(f"fills: {fills_out} ({write_fills(outcome.results, fills_out)})")
    charts = write_charts(outcome.results, report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    for chart in charts:
        console.print(f"chart: {chart}")
    console.print(f"summary: {report_dir / 'summary.json'}")
    return summary
