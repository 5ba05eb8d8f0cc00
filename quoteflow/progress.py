"""Rich progress bars fed by the chunks leaving the flow's input."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def event_progress(console: Console, *, sim_seconds: float | None = None) -> Progress:
    """Counts events; with `sim_seconds` the bar follows simulated time instead."""
    columns = [SpinnerColumn(), TextColumn("[progress.description]{task.description}")]
    if sim_seconds is not None:
        columns += [BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn()]
    else:
        columns += [MofNCompleteColumn(), TextColumn("events")]
    columns += [TimeElapsedColumn(), TextColumn("{task.fields[rate]}")]
    return Progress(*columns, console=console, transient=False)


def chunk_tracker(
    progress: Progress, task, *, start_ns: int | None = None
) -> Callable[[list], None]:
    """A ChunkedSource callback advancing `task` by events, or by simulated seconds."""
    seen = 0

    def on_chunk(chunk: list) -> None:
        nonlocal seen
        seen += len(chunk)
        rate = f"{seen / max(progress.tasks[task].elapsed or 1e-9, 1e-9):,.0f} ev/s"
        if start_ns is None:
            progress.update(task, completed=seen, rate=rate)
        else:
            last = chunk[-1].receive_ts
            progress.update(task, completed=(last - start_ns) / 1e9, rate=rate)

    return on_chunk
