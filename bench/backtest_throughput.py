"""Backtest throughput in events/s, end to end and per stage.

- `decode`: the recording read into events (`Recordings([...]).events()`), nothing else;
- `flow`: the quote flow with the paper venue (`run_paper_trading`) on events decoded
  beforehand, one run per strategy;
- `end_to_end`: both, as `quoteflow backtest` runs them (minus the table and charts);
- with `--cached`, the same from the event cache (`quoteflow backtest --cache DIR`, written
  once beforehand into `--out`/event_cache): `cache load` (the events read back, nothing
  else) and `end_to_end_cached`, the repeated backtest of a parameter search.

Every measurement is the best of `--repeat` runs, interleaved so a noisy neighbour hurts
all stages alike. An event is one recorded message (a depth diff with many levels counts
once). `python -m bench.backtest_throughput --help` lists the options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.charts import throughput_chart
from bench.common import console as bench_console
from bench.common import parse_args, progress_bar, read_baseline, run_summary, write_json
from connectors.replay.event_cache import CachedRecordings
from connectors.replay.recordings import Recordings
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions

RESULT_FILE = "backtest_throughput.json"
TARGET_EVENTS_PER_S = 200_000


def time_decode(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = sum(1 for _ in Recordings([path]).events())
    return time.perf_counter() - started, count


def time_flow(events, strategy: str) -> tuple[float, int]:
    started = time.perf_counter()
    outcome = run_paper_trading(events, TradingOptions(strategy=strategy))
    return time.perf_counter() - started, outcome.summary["events"]


def time_cache_load(path: Path, cache_dir: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = sum(1 for _ in CachedRecordings([path], cache_dir).events())
    return time.perf_counter() - started, count


def stages(
    path: Path, strategies: Sequence[str], cache_dir: Path | None = None
) -> dict[str, Callable[[], tuple[float, int]]]:
    decoded = list(Recordings([path]).events())
    measured: dict[str, Callable[[], tuple[float, int]]] = {"decode": lambda: time_decode(path)}
    if cache_dir is not None:
        list(CachedRecordings([path], cache_dir).events())  # written once, before any timing
        measured["cache load"] = lambda: time_cache_load(path, cache_dir)
    for strategy in strategies:
        measured[f"flow {strategy}"] = lambda s=strategy: time_flow(decoded, s)
        measured[f"end_to_end {strategy}"] = (
            lambda s=strategy: time_flow(Recordings([path]).events(), s)
        )
        if cache_dir is not None:
            measured[f"end_to_end_cached {strategy}"] = (
                lambda s=strategy: time_flow(CachedRecordings([path], cache_dir).events(), s)
            )
    return measured


def best_of(measured: dict[str, Callable], repeat: int, console: Console) -> dict[str, dict]:
    best: dict[str, dict] = {}
    with progress_bar(console) as progress:
        task = progress.add_task("backtest throughput", total=repeat * len(measured), last="")
        for run in range(1, repeat + 1):
            for name, measure in measured.items():
                progress.update(task, description=f"run {run}/{repeat}: {name}")
                cpu_started = time.process_time()
                seconds, events = measure()
                cpu = time.process_time() - cpu_started  # what a shared box distorts least
                rate = events / seconds
                progress.update(task, advance=1, last=f"{name}: {rate:,.0f} ev/s")
                if name not in best or seconds < best[name]["seconds"]:
                    best[name] = {
                        "seconds": seconds,
                        "events": events,
                        "events_per_second": rate,
                        "us_per_event": seconds / events * 1e6,
                        "cpu_seconds": cpu,
                    }
    return best


def print_table(results: dict[str, dict], console: Console) -> None:
    table = Table(title="backtest throughput (best of runs)")
    table.add_column("stage", no_wrap=True)
    for column in ("events", "seconds", "ev/s", "µs/ev", "CPU s"):
        table.add_column(column, justify="right")
    for name, result in results.items():
        table.add_row(
            name,
            f"{result['events']:,}",
            f"{result['seconds']:.3f}",
            f"{result['events_per_second']:,.0f}",
            f"{result['us_per_event']:.2f}",
            f"{result['cpu_seconds']:.3f}",
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(__doc__.splitlines()[0], argv)
    console = bench_console()
    cache_dir = args.out / "event_cache" if args.cached else None
    results = best_of(stages(args.data, args.strategies, cache_dir), args.repeat, console)
    print_table(results, console)
    summary = run_summary(args, __spec__.name, results)
    console.print(f"results: {write_json(args.out / RESULT_FILE, summary)}")
    baseline = read_baseline(args.baseline, RESULT_FILE)
    chart = throughput_chart(
        summary, baseline, TARGET_EVENTS_PER_S, args.img_dir / "backtest_throughput.png"
    )
    console.print(f"chart: {chart}")
    return summary


if __name__ == "__main__":
    main()
