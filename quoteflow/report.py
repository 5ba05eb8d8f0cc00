"""The end-of-run report: a rich table on the terminal and a PNG chart per instrument."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from rich.console import Console
from rich.table import Table

from quoteflow.results import RunResults


def summary_table(summary: dict, title: str) -> Table:
    """Metrics down, instruments across: stays readable on a narrow terminal."""
    instruments = summary["instruments"]
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for key in instruments:
        table.add_column(key, justify="right")
    rows = (
        ("fills", lambda s: f"{s['fills']:,}"),
        ("volume", lambda s: f"{s['volume']:,.2f}"),
        ("realized PnL", lambda s: f"{s['realized_pnl']:,.4f}"),
        ("unrealized PnL", lambda s: f"{s['unrealized_pnl']:,.4f}"),
        ("fees", lambda s: f"{s['fees']:,.4f}"),
        ("net PnL", lambda s: f"{s['net_pnl']:,.4f}"),
        ("final inventory", lambda s: f"{s['final_inventory']:g}"),
        ("max |inventory|", lambda s: f"{s['max_abs_inventory']:g}"),
        ("markout 1s / 5s / 30s", lambda s: _markout_cell(s["markouts"])),
    )
    for label, cell in rows:
        table.add_row(label, *(cell(s) for s in instruments.values()))
    return table


def _markout_cell(markouts: dict) -> str:
    cells = []
    for horizon in ("1s", "5s", "30s"):
        entry = markouts.get(horizon)
        cells.append("-" if not entry or not entry.get("count") else f"{entry['mean']:+.4f}")
    return " / ".join(cells)


def print_summary(summary: dict, title: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(summary_table(summary, title))
    console.print(
        f"{summary['events']:,} events in {summary['wall_seconds']:.2f} s "
        f"({summary['events_per_second']:,.0f} events/s), {summary['intents']:,} intents, "
        f"{summary['dead_letters']:,} dead letters"
    )
    for key, untraded in summary["untraded"].items():
        console.print(
            f"[yellow]not traded[/] {key} ({untraded['events']:,} events): {untraded['reason']}"
        )


def _times(ns: list[int]) -> np.ndarray:
    return np.array(ns, dtype="datetime64[ns]")


def write_charts(results: RunResults, directory: Path) -> list[Path]:
    """One PNG per instrument: mid with our quotes and fills, inventory, cumulative PnL."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key, positions in sorted(results.positions.items()):
        path = directory / f"{key.replace(':', '_').replace('/', '-')}.png"
        _instrument_chart(
            key, positions, results.intents.get(key, []), results.fills.get(key, []), path
        )
        written.append(path)
    return written


def _instrument_chart(key, positions, intents, fills, path: Path) -> None:
    fig, (ax_price, ax_inventory, ax_pnl) = plt.subplots(
        3, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1, 1.3]}
    )
    times = _times([p.ts for p in positions])
    ax_price.plot(
        times, [float(p.mark_price) for p in positions], color="black", lw=0.8, label="mid"
    )
    quoted = [i for i in intents if i.bids or i.asks]
    if quoted:
        t = _times([i.ts for i in quoted])
        bids = [float(i.bids[0].price) if i.bids else np.nan for i in quoted]
        asks = [float(i.asks[0].price) if i.asks else np.nan for i in quoted]
        ax_price.step(t, bids, where="post", color="tab:green", lw=0.7, alpha=0.8, label="our bid")
        ax_price.step(t, asks, where="post", color="tab:red", lw=0.7, alpha=0.8, label="our ask")
    for side, marker, color in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
        sided = [f for f in fills if f.side == side]
        if sided:
            ax_price.scatter(
                _times([f.ts for f in sided]),
                [float(f.price) for f in sided],
                marker=marker,
                color=color,
                s=14,
                zorder=3,
                label=f"{side} fills",
            )
    ax_price.set_title(f"{key}: mid, quotes and fills")
    ax_price.legend(loc="upper left", fontsize=8, ncols=3)
    ax_inventory.step(times, [float(p.quantity) for p in positions], where="post", color="tab:blue")
    ax_inventory.axhline(0, color="grey", lw=0.5)
    ax_inventory.set_ylabel("inventory")
    net = [float(p.realized_pnl + p.unrealized_pnl - p.fees) for p in positions]
    ax_pnl.plot(times, net, color="tab:purple", label="net (realized + unrealized − fees)")
    ax_pnl.plot(
        times,
        [float(p.realized_pnl) for p in positions],
        color="tab:orange",
        lw=0.8,
        label="realized",
    )
    ax_pnl.axhline(0, color="grey", lw=0.5)
    ax_pnl.set_ylabel("PnL")
    ax_pnl.legend(loc="upper left", fontsize=8)
    ax_pnl.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
