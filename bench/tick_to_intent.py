"""Tick-to-intent latency inside the quote flow, and the compute time of one step.

- `flow`: the quote flow with the paper venue runs on in-memory connectors with
  `chunk_size=1` (event at a time). The clock starts when an event leaves the flow's input
  (`ChunkedSource` hands it to Bytewax) and stops when the intent it triggered reaches the
  sink, so Bytewax's scheduling, the key split and the per-instrument state are all inside.
- `step`: the per-instrument state's `on_event` (book, paper venue, estimators, strategy,
  order diff) called directly, for the events that produce an intent: the compute part of
  the latency, without the dataflow around it.

Events are decoded before the clock runs: decoding belongs to ingest, not to the quote
flow. Each strategy's figures come from the run with the lowest p99 of `--repeat` runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.charts import latency_chart
from bench.common import console as bench_console
from bench.common import parse_args, progress_bar, read_baseline, run_summary, write_json
from connectors.replay.recordings import Recordings
from models.events import OrderIntent
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import SessionRegistry, TradingOptions

RESULT_FILE = "tick_to_intent.json"
TARGET_P99_US = 300.0  # issue 10: in-process tick-to-intent p99 below 300 µs
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def flow_latencies_ns(events: list, strategy: str) -> np.ndarray:
    """Input-to-sink time of every intent, in ns, through the Bytewax quote flow."""
    left_input: dict[int, int] = {}
    latencies: list[int] = []
    clock = time.perf_counter_ns

    def on_chunk(chunk: list) -> None:
        left_input[chunk[0].receive_ts] = clock()

    def on_output(batch: list) -> None:
        now = clock()
        for event in batch:
            if type(event) is OrderIntent:
                latencies.append(now - left_input[event.trigger_receive_ts])

    run_paper_trading(
        events, TradingOptions(strategy=strategy), chunk_size=1,
        on_chunk=on_chunk, on_output=on_output,
    )
    return np.array(latencies, dtype=np.int64)


def step_latencies_ns(events: list, strategy: str) -> np.ndarray:
    """Compute time of `on_event` for the events that produce an intent, in ns."""
    registry = SessionRegistry(TradingOptions(strategy=strategy))
    sessions: dict[str, object] = {}
    latencies: list[int] = []
    clock = time.perf_counter_ns
    for event in events:
        key = event.key
        session = sessions.get(key)
        if session is None:
            session = sessions[key] = registry(key)
        started = clock()
        out = session.on_event(event)
        elapsed = clock() - started
        if any(type(item) is OrderIntent for item in out):
            latencies.append(elapsed)
    return np.array(latencies, dtype=np.int64)


def describe(latencies_ns: np.ndarray) -> dict:
    us = latencies_ns / 1e3
    return {
        "count": int(us.size),
        "mean_us": float(us.mean()),
        **{name: float(np.percentile(us, q)) for name, q in PERCENTILES.items()},
        "max_us": float(us.max()),
    }


def measure(events: list, strategies: Sequence[str], repeat: int, console: Console) -> dict:
    kinds = {"flow": flow_latencies_ns, "step": step_latencies_ns}
    best: dict[str, dict] = {}
    samples: dict[str, np.ndarray] = {}
    with progress_bar(console) as progress:
        task = progress.add_task(
            "tick to intent", total=repeat * len(strategies) * len(kinds), last=""
        )
        for run in range(1, repeat + 1):
            for strategy in strategies:
                for kind, latencies_of in kinds.items():
                    name = f"{kind} {strategy}"
                    progress.update(task, description=f"run {run}/{repeat}: {name}")
                    latencies = latencies_of(events, strategy)
                    stats = describe(latencies)
                    progress.update(task, advance=1, last=f"p99 {stats['p99']:,.0f} µs")
                    if name not in best or stats["p99"] < best[name]["p99"]:
                        best[name], samples[name] = stats, latencies
    return {"stats": best, "samples": samples}


def print_table(stats: dict[str, dict], console: Console) -> None:
    table = Table(title="tick-to-intent latency, µs (run with the best p99)")
    columns = ("intents", "mean", *PERCENTILES, "max")
    table.add_column("measure", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right")
    for name, s in stats.items():
        values = [s["mean_us"], *(s[p] for p in PERCENTILES), s["max_us"]]
        table.add_row(name, f"{s['count']:,}", *(f"{v:,.1f}" for v in values))
    console.print(table)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    console = bench_console()
    events = list(Recordings([args.data]).events())
    measured = measure(events, args.strategies, args.repeat, console)
    print_table(measured["stats"], console)
    summary = run_summary(args, __spec__.name, measured["stats"])
    console.print(f"results: {write_json(args.out / RESULT_FILE, summary)}")
    baseline = read_baseline(args.baseline, RESULT_FILE)
    chart = latency_chart(
        measured["samples"], baseline, TARGET_P99_US, args.img_dir / "tick_to_intent.png"
    )
    console.print(f"chart: {chart}")
    return summary


if __name__ == "__main__":
    main()
