"""`quoteflow suggest`: pick a strategy and parameters by backtest, and check it out of sample.

The recordings are cut in time: the first `fit_fraction` of their span is the **fit** part,
the rest the **validation** part. Every candidate (strategy × parameter set of the grid) is
backtested on the fit part — the same paper-trading path as `quoteflow backtest` — and the one
with the best net PnL is recommended (the fit runs go through `quoteflow sweep`'s engine,
`quoteflow.sweep.run_jobs`: parallel processes, one per core). It is then backtested on the
validation part, which no choice has seen, beside the baseline: a fixed-spread `ladder` with
its default parameters.

The validation replay starts from the book as it stood at the cut (a snapshot made from the
fit part's book, at the same sequence number, so the later diffs continue it exactly).
Error bars: both runs are marked to market every second of the exchange clock (the clock
their fills are stamped on) on the same mids; the difference of their per-second PnL changes
gets a block-bootstrap standard error (`models.evaluation`, blocks of `block_s` seconds), so
the error bar of the advantage over the baseline accounts for the two runs sharing one
market path.

The result is printed, charted (cumulative validation PnL of both, with the cut), written as
JSON into the output directory and published (`quoteflow.suggestion_store`), which
`GET /api/v1/strategies/suggestion` serves; its `strategy` and `params` are the body that
`PUT /api/v1/strategies/current` takes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display
import matplotlib.pyplot as plt
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.replay.event_cache import open_recordings
from models.book import OrderBook
from models.evaluation import mean_and_se
from models.events import BookDelta, BookSnapshot, DeadLetter, exchange_time
from models.features import FeatureConfig, MarketFeatures
from models.strategies import build_strategy
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from quoteflow.suggestion_store import publish as publish_latest
from quoteflow.sweep import Job, run_jobs

NS_PER_S = 1_000_000_000
BASELINE = ("ladder", {})
DEFAULT_GRID: dict[str, list[dict[str, str]]] = {
    "ladder": [{"spread_bps": s} for s in ("2", "5", "10", "20")],
    "avellaneda-stoikov-infinite": [{"gamma": g} for g in ("0.01", "0.1", "1")],
    "glft": [{"gamma": g} for g in ("0.01", "0.1", "1")],
}
def load_events(paths: Sequence[Path], cache_dir: Path | None = None) -> list:
    return [e for e in open_recordings(paths, cache_dir).events()
            if not isinstance(e, DeadLetter)]


def split_events(events: list, fit_fraction: float) -> tuple[list, list, int]:
    """(fit events, validation events, cut time); the validation part starts from a snapshot
    of each synced L2 book at the cut, so its diffs continue a complete book.

    The cut is on the recorder's clock (`receive_ts`), the order of the stream: the fit part
    is what had been received by then (as `quoteflow.sweep`'s `until_ns`). Each snapshot
    keeps the exchange time of the book's last diff, so the validation part's exchange clock
    (`exchange_seconds`) goes on from the fit part's."""
    if not events:
        raise ValueError("the recordings hold no market events")
    first, last = events[0].receive_ts, events[-1].receive_ts
    cut = first + int((last - first) * fit_fraction)
    fit = [e for e in events if e.receive_ts <= cut]
    books: dict[str, OrderBook] = {}
    book_times: dict[str, int] = {}
    for event in fit:
        if type(event) is BookDelta or type(event) is BookSnapshot:
            book = books.get(event.key)
            if book is None:
                book = books[event.key] = OrderBook(event.venue, event.symbol)
            book.apply(event)
            book_times[event.key] = exchange_time(event)
    snapshots = [
        BookSnapshot(
            venue=book.venue, symbol=book.symbol, exchange_ts=book_times[key], receive_ts=cut,
            seq=book.seq, bids=book.levels("bid", 1_000_000), asks=book.levels("ask", 1_000_000),
        )
        for key, book in books.items()
        if book.synced and book.seq is not None
    ]
    return fit, [*snapshots, *(e for e in events if e.receive_ts > cut)], cut


def exchange_clock(events: Iterable) -> Iterator[tuple[object, int]]:
    """Each event with its instrument's exchange clock at it: the paper venue's, the clock
    of the fills' `ts` (and of the markouts). Each event's `exchange_time`, never going back:
    the streams' exchange times interleave (a spot touch's is an estimate), and the venue of
    an instrument's session keeps the latest it has seen."""
    clocks: dict[str, int] = {}
    for event in events:
        key = event.key
        now = exchange_time(event)
        if now < clocks.get(key, now):
            now = clocks[key]
        clocks[key] = now
        yield event, now


def exchange_seconds(events: Iterable) -> np.ndarray:
    """The marking grid on the exchange clock: every whole second after the first event,
    and the clock's last time (so the last fills count)."""
    start = end = None
    for _, now in exchange_clock(events):
        if start is None:
            start = end = now
        end = max(end, now)
    if start is None:
        return np.zeros(0, dtype=np.int64)
    first = start - start % NS_PER_S + NS_PER_S
    return np.append(np.arange(first, end, NS_PER_S, dtype=np.int64), end)


def mids_per_second(events: Iterable) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each instrument's mids on its exchange clock (`exchange_clock`, the fills' clock):
    (stamps, mids), a mid being the state after every event at or before its stamp, which
    holds until the next stamp. Stamped at whole seconds and, last, at the clock's last time
    (the state after the last event)."""
    states: dict[str, MarketFeatures] = {}
    # The first whole second at or after the latest event: stamped when a later event comes.
    due: dict[str, int] = {}
    last: dict[str, int] = {}
    out: dict[str, tuple[list[int], list[float]]] = {}
    for event, now in exchange_clock(events):
        key = event.key
        state = states.get(key)
        if state is None:
            # Only its touch is read (the fresher of BBO and L2 book), never sampled.
            state = states[key] = MarketFeatures(event.venue, event.symbol, FeatureConfig(),
                                                 NS_PER_S // 10)
            out[key] = ([], [])
        elif now > due[key]:  # the state before this event is the state at that second
            touch = state.touch()
            if touch is not None:
                stamps, mids = out[key]
                stamps.append(due[key])
                mids.append(float(touch.bid_price + touch.ask_price) / 2)
        state.apply(event)
        due[key] = -(-now // NS_PER_S) * NS_PER_S  # an event at a whole second counts in it
        last[key] = now
    for key, state in states.items():  # and the state after the last event, at its time
        touch = state.touch()
        if touch is not None:
            stamps, mids = out[key]
            stamps.append(last[key])
            mids.append(float(touch.bid_price + touch.ask_price) / 2)
    return {k: (np.array(t, dtype=np.int64), np.array(m)) for k, (t, m) in out.items() if t}


def pnl_path(fills: dict[str, list], mids: dict[str, tuple[np.ndarray, np.ndarray]],
             grid: np.ndarray) -> np.ndarray:
    """Mark-to-market PnL (quote currency, net of fees) on `grid`, summed over instruments.

    `grid`, the mids' stamps and the fills' `ts` are all on the exchange clock
    (`exchange_seconds`, `mids_per_second`): a fill counts from the first grid point at or
    after it."""
    total = np.zeros(len(grid))
    for key, (stamps, prices) in mids.items():
        cash = np.zeros(len(grid))
        inventory = np.zeros(len(grid))
        for fill in fills.get(key, []):
            sign = 1.0 if fill.side == "buy" else -1.0
            size, price, fee = float(fill.size), float(fill.price), float(fill.fee)
            after = grid >= fill.ts
            inventory[after] += sign * size
            cash[after] -= sign * size * price + fee
        index = np.clip(np.searchsorted(stamps, grid, side="right") - 1, 0, len(stamps) - 1)
        total += cash + inventory * prices[index]
    return total


def backtest(events: list, strategy: str, params: dict[str, str]) -> dict:
    outcome = run_paper_trading(iter(events), TradingOptions(strategy=strategy, params=params))
    return {**_run_record(strategy, params, outcome.summary), "_fills": outcome.results.fills}


def _run_record(strategy: str, params: dict[str, str], summary: dict) -> dict:
    return {
        "strategy": strategy,
        "params": params,
        "net_pnl": float(summary.get("net_pnl", 0.0)),
        "fills": int(summary.get("fills", 0)),
        "fees": float(summary.get("fees", 0.0)),
    }


def suggest(
    paths: Sequence[Path],
    *,
    out_dir: Path,
    grid: dict[str, list[dict[str, str]]] | None = None,
    fit_fraction: float = 0.6,
    block_s: int = 30,
    publish: Path | None = None,
    console: Console | None = None,
    workers: int | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Search on the fit part (in `workers` processes, default every core), validate on the
    rest; returns (and writes) the suggestion. `cache_dir`: the event cache."""
    if not 0.1 <= fit_fraction <= 0.9:
        raise ValueError(f"fit fraction must be in [0.1, 0.9], got {fit_fraction}")
    console = console or Console(stderr=True)
    grid = grid or DEFAULT_GRID
    candidates = [(name, params) for name, sets in grid.items() for params in sets]
    for name, params in [*candidates, BASELINE]:
        build_strategy(name, params)  # a bad candidate fails before any data is read
    events = load_events(paths, cache_dir)
    _, validation_events, cut = split_events(events, fit_fraction)
    # The fit runs are a search: the sweep engine runs them in parallel processes, each
    # replaying the recordings up to the cut (the same events as `split_events`' fit part).
    recording = tuple(str(p) for p in paths)
    jobs = [Job(str(i), name, tuple(params.items()), recording, until_ns=cut)
            for i, (name, params) in enumerate(candidates)]
    summaries = run_jobs(jobs, TradingOptions(strategy=BASELINE[0]), workers=workers,
                         cache_dir=cache_dir, console=console, description="fit: backtests")
    fit_runs = [_run_record(job.strategy, dict(job.params), summaries[job.run_id])
                for job in jobs]
    best = max(fit_runs, key=lambda run: run["net_pnl"])
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("validation", total=2)
        recommended = backtest(validation_events, best["strategy"], best["params"])
        progress.advance(task)
        baseline = backtest(validation_events, *BASELINE)
        progress.advance(task)
    mids = mids_per_second(validation_events)
    seconds = exchange_seconds(validation_events)
    paths_pnl = {
        "recommended": pnl_path(recommended["_fills"], mids, seconds),
        "baseline": pnl_path(baseline["_fills"], mids, seconds),
    }
    validation = {
        label: _validation_stats(run, paths_pnl[label], block_s)
        for label, run in (("recommended", recommended), ("baseline", baseline))
    }
    diff = np.diff(paths_pnl["recommended"] - paths_pnl["baseline"], prepend=0.0)
    _, se = _se(diff, block_s)
    validation["advantage"] = {
        "pnl": float(paths_pnl["recommended"][-1] - paths_pnl["baseline"][-1])
        if len(seconds) else 0.0,
        "se": se * len(diff),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = _chart(seconds, paths_pnl, best, out_dir)
    suggestion = {
        "created_ns": time.time_ns(),
        "data": [str(p) for p in paths],
        "fit_fraction": fit_fraction,
        "cut_ns": cut,
        "strategy": best["strategy"],
        "params": best["params"],
        # Equal parameters build equal strategies: the recommendation may be the baseline.
        "is_baseline": build_strategy(best["strategy"], best["params"])
        == build_strategy(*BASELINE),
        "fit": [{k: v for k, v in run.items() if not k.startswith("_")} for run in fit_runs],
        "validation": validation,
        "baseline": {"strategy": BASELINE[0], "params": BASELINE[1]},
        "chart": str(chart),
    }
    (out_dir / "suggestion.json").write_text(json.dumps(suggestion, indent=2))
    if publish is not None:
        publish_latest(suggestion, publish)
    console.print(_table(suggestion))
    console.print(f"chart: {chart}")
    return suggestion


def _validation_stats(run: dict, path: np.ndarray, block_s: int) -> dict:
    increments = np.diff(path, prepend=0.0)
    _, se = _se(increments, block_s)
    return {
        "net_pnl": run["net_pnl"],
        "marked_pnl": float(path[-1]) if len(path) else 0.0,
        "marked_pnl_se": se * len(increments),
        "fills": run["fills"],
        "fees": run["fees"],
    }


def _se(increments: np.ndarray, block_s: int) -> tuple[float, float]:
    """Mean and SE of per-second increments; NaN SE with fewer than 5 blocks of data (a
    block as long as the run resamples to the run itself and would claim no error)."""
    block = min(block_s, len(increments) // 5)
    if block < 1:
        return float("nan"), float("nan")
    return mean_and_se(increments, block=block)


def _table(suggestion: dict) -> Table:
    params = ", ".join(f"{k}={v}" for k, v in suggestion["params"].items()) or "defaults"
    table = Table(
        title=f"Suggestion: {suggestion['strategy']} ({params}), chosen on the first "
        f"{suggestion['fit_fraction']:.0%} of the data",
        title_justify="left",
    )
    for header in ("validation (out of sample)", "net PnL", "marked PnL ± SE", "fills"):
        table.add_column(header, justify="right" if header != header.split()[0] else "left")
    for label in ("recommended", "baseline"):
        v = suggestion["validation"][label]
        table.add_row(label, f"{v['net_pnl']:.4f}",
                      f"{v['marked_pnl']:.4f} ± {v['marked_pnl_se']:.4f}", f"{v['fills']:,}")
    advantage = suggestion["validation"]["advantage"]
    table.caption = (
        f"advantage over the ladder baseline: {advantage['pnl']:+.4f} ± {advantage['se']:.4f} "
        "(block-bootstrap SE of the difference)"
        + ("; the recommendation is the baseline itself" if suggestion["is_baseline"] else "")
    )
    return table


def _chart(seconds: np.ndarray, paths: dict[str, np.ndarray], best: dict, out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    times = seconds.astype("datetime64[ns]")
    params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    ax.plot(times, paths["recommended"], label=f"{best['strategy']} ({params})")
    ax.plot(times, paths["baseline"], label="ladder (defaults)", color="grey")
    ax.axhline(0.0, color="black", lw=0.5)
    ax.set_ylabel("PnL, quote currency (marked to mid, net of fees)")
    ax.set_title("Validation part (never used for the choice): cumulative PnL")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "suggestion.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_grid(items: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """`STRATEGY:k=v,k=v` items → a grid; raises ValueError naming a bad item."""
    grid: dict[str, list[dict[str, str]]] = {}
    for item in items:
        name, _, rest = item.partition(":")
        params: dict[str, str] = {}
        for pair in filter(None, rest.split(",")):
            key, sep, value = pair.partition("=")
            if not sep or not key or not value:
                raise ValueError(f"bad candidate {item!r}: parameters are NAME=VALUE")
            params[key.strip()] = value.strip()
        grid.setdefault(name.strip(), []).append(params)
    return grid

