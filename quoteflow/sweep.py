"""`quoteflow sweep`: one strategy backtested over a parameter grid (or a random sample of
it) on one or more recordings, the backtests in parallel processes.

- The plan: `--grid NAME=V1,V2,...` per parameter; the runs are the grid's product, on every
  recording. With `--random N --seed S`, N points are drawn instead, each parameter from its
  list or from a `LOW..HIGH` range (uniform; whole numbers for integer parameters); the draw
  is fixed by the seed, so a rerun plans the same runs.
- Each run has an id from what decides its result (strategy, parameters, recording, the
  engine's flags). It is written to `OUT/runs/ID.json` as soon as it completes, and a run
  whose file exists is not run again: an interrupted sweep resumes where it stopped.
- The engine (`run_jobs`) is shared with `quoteflow suggest`: the same paper-trading path as
  `quoteflow backtest`, one process per core, each keeping the last recording it replayed in
  memory (a worker decodes a recording once for all its runs; `--cache DIR` across sweeps).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from connectors.replay.event_cache import open_recordings
from models.events import DeadLetter
from models.strategies import build_strategy, strategy_params
from quoteflow.runner import require_market_events, run_paper_trading
from quoteflow.sessions import TradingOptions

RANGE = ".."


@dataclass(frozen=True)
class Job:
    """One backtest: `recording` is the files replayed together (merged by receive time);
    with `until_ns`, only its market events up to that receive time (a fit window)."""

    run_id: str
    strategy: str
    params: tuple[tuple[str, str], ...]
    recording: tuple[str, ...]
    until_ns: int | None = None


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """`NAME=V1,V2` (or `NAME=LOW..HIGH` for random search) items; ValueError on bad syntax."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = (part.strip() for part in item.partition("="))
        listed = [v.strip() for v in values.split(",")]
        if not sep or not name or not all(listed):
            raise ValueError(f"bad --grid {item!r}: expected NAME=V1,V2,... or NAME=LOW..HIGH")
        if name in grid:
            raise ValueError(f"--grid {name} is given twice")
        if any(RANGE in v for v in listed) and len(listed) > 1:
            raise ValueError(f"bad --grid {item!r}: a LOW..HIGH range stands alone")
        grid[name] = listed
    return grid


def plan_points(
    strategy: str, grid: Mapping[str, list[str]], *, samples: int | None = None, seed: int = 0
) -> list[dict[str, str]]:
    """The parameter sets to run: the grid's product, or `samples` random draws (duplicates
    dropped). Each set is checked by building the strategy, so an unknown parameter or a bad
    value fails here, before any data is read."""
    declared = strategy_params(strategy)  # an unknown strategy raises ValueError
    for name in grid:
        if name not in declared:
            raise ValueError(f"{strategy}: unknown parameter {name}; valid: {', '.join(declared)}")
    if samples is None:
        ranged = [name for name, values in grid.items() if RANGE in values[0]]
        if ranged:
            raise ValueError(f"--grid {ranged[0]}: a LOW..HIGH range needs --random N")
        points = [dict(zip(grid, values, strict=True))
                  for values in itertools.product(*grid.values())]
    else:
        rng = random.Random(seed)
        points = []
        for _ in range(samples):
            point = {name: _draw(rng, name, values, declared[name].type)
                     for name, values in grid.items()}
            if point not in points:
                points.append(point)
    for point in points:
        build_strategy(strategy, point)
    return points


def _draw(rng: random.Random, name: str, values: list[str], kind: type) -> str:
    if RANGE not in values[0]:
        return rng.choice(values)
    low_text, _, high_text = values[0].partition(RANGE)
    try:
        low, high = kind(low_text), kind(high_text)
    except ValueError:
        raise ValueError(f"--grid {name}={values[0]}: bounds must be {kind.__name__}s") from None
    if low > high:
        raise ValueError(f"--grid {name}={values[0]}: LOW is above HIGH")
    if kind is int:
        return str(rng.randint(low, high))
    return f"{rng.uniform(low, high):.6g}"


def run_id(strategy: str, params: Mapping[str, str], recording: Sequence[str | Path],
           engine: Mapping[str, object], until_ns: int | None = None) -> str:
    """Stable across reruns: what decides a run's result, hashed."""
    identity = {
        "strategy": strategy, "params": dict(sorted(params.items())),
        "recording": [str(Path(p)) for p in recording], "until_ns": until_ns,
        "engine": {k: engine[k] for k in sorted(engine)},
    }
    return hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest()[:16]


def plan_jobs(
    strategy: str, points: Sequence[dict[str, str]], recordings: Sequence[Path],
    engine: Mapping[str, object],
) -> list[Job]:
    """Every point on every recording, recording by recording (a worker keeps one in memory)."""
    return [
        Job(run_id(strategy, point, [path], engine), strategy, tuple(point.items()), (str(path),))
        for path in recordings for point in points
    ]


# -- the engine: parallel backtests ------------------------------------------------------------

_loaded: tuple[tuple, list] | None = None  # this process's last replayed recording


def _events(job: Job, cache_dir: Path | None) -> list:
    global _loaded
    key = (job.recording, cache_dir)
    if _loaded is None or _loaded[0] != key:
        _loaded = None  # let the previous recording go before the next is read
        _loaded = (key, list(open_recordings(job.recording, cache_dir).events()))
    events = _loaded[1]
    if job.until_ns is None:
        return events
    return [e for e in events if type(e) is not DeadLetter and e.receive_ts <= job.until_ns]


def run_job(job: Job, options: TradingOptions, cache_dir: Path | None) -> dict:
    """One backtest, as `quoteflow backtest` runs it; returns its summary."""
    run_options = replace(options, strategy=job.strategy,
                          params={**options.params, **dict(job.params)})
    outcome = run_paper_trading(iter(_events(job, cache_dir)), run_options)
    return require_market_events(outcome).summary


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run_jobs(
    jobs: Sequence[Job],
    options: TradingOptions,
    *,
    workers: int | None = None,
    cache_dir: Path | None = None,
    on_done: Callable[[Job, dict], None] | None = None,
    console: Console | None = None,
    description: str = "backtests",
) -> dict[str, dict]:
    """Run every job (in `workers` processes; 1: in this one) with a progress bar; returns
    each summary by run id and hands each to `on_done` as it completes. An error in a run
    stops the rest and is raised here."""
    console = console or Console(stderr=True)
    workers = min(workers or default_workers(), max(len(jobs), 1))
    summaries: dict[str, dict] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"))

    def done(progress: Progress, task, job: Job, summary: dict) -> None:
        summaries[job.run_id] = summary
        if on_done is not None:
            on_done(job, summary)
        params = ",".join(f"{k}={v}" for k, v in job.params)
        progress.update(task, advance=1,
                        last=f"{params}: {summary['fills']} fills, net {summary['net_pnl']:+.4f}")

    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=len(jobs), last="")
        if workers <= 1:
            try:
                for job in jobs:
                    done(progress, task, job, run_job(job, options, cache_dir))
            finally:
                global _loaded
                _loaded = None
            return summaries
        # spawn: the parent runs rich's refresh thread, which a fork could catch mid-lock.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(run_job, job, options, cache_dir): job for job in jobs}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = pending.pop(future)
                        done(progress, task, job, future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return summaries


# -- the command -------------------------------------------------------------------------------

def sweep(
    strategy: str,
    grid_items: Sequence[str],
    recordings: Sequence[Path],
    out_dir: Path,
    options: TradingOptions,
    engine: Mapping[str, object],
    *,
    samples: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    cache_dir: Path | None = None,
    console: Console | None = None,
) -> dict:
    """Plan, skip the runs `out_dir` already holds, run the rest, write the table and chart.

    `options` is the base engine (fixed parameters included), `engine` the flags it was made
    from: part of each run's id, so a sweep with other flags never reuses these results.
    Raises ValueError (one line) for a bad grid or parameter."""
    from quoteflow import sweep_report

    console = console or Console(stderr=True)
    grid = parse_grid(grid_items)
    if not grid:
        raise ValueError("give at least one --grid NAME=V1,V2,...")
    points = plan_points(strategy, grid, samples=samples, seed=seed)
    jobs = plan_jobs(strategy, points, recordings, engine)
    rows = {job.run_id: row for job in jobs
            if (row := sweep_report.read_run(out_dir, job.run_id)) is not None}
    todo = [job for job in jobs if job.run_id not in rows]
    workers = min(workers or default_workers(), max(len(todo), 1))
    console.print(f"sweep {strategy}: {len(jobs)} runs ({len(points)} parameter sets × "
                  f"{len(recordings)} recordings), {len(rows)} done before, {len(todo)} to run "
                  f"on {workers} worker(s)")

    def keep(job: Job, summary: dict) -> None:
        row = rows[job.run_id] = sweep_report.result_row(job, summary)
        sweep_report.write_run(out_dir, row)

    out_dir.mkdir(parents=True, exist_ok=True)
    run_jobs(todo, options, workers=workers, cache_dir=cache_dir, on_done=keep,
             console=console, description=f"sweep {strategy}")
    ordered = [rows[job.run_id] for job in jobs]
    meta = {
        "strategy": strategy, "grid": grid, "random": samples,
        "seed": seed if samples is not None else None,
        "recordings": [str(p) for p in recordings],
        "engine": {k: engine[k] for k in sorted(engine)},
    }
    json_path, csv_path = sweep_report.write_table(ordered, out_dir, meta)
    chart = sweep_report.write_chart(ordered, out_dir)
    console.print(sweep_report.best_table(ordered))
    for label, path in (("results", json_path), ("table", csv_path), ("chart", chart)):
        if path is not None:
            console.print(f"{label}: {path}")
    return {**meta, "runs": ordered}
