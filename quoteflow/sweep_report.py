"""What `quoteflow sweep` writes: one file per completed run (the resume points), the table of
all runs as JSON and CSV, and a chart of net PnL and markouts over each parameter."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display
import matplotlib.pyplot as plt
from rich.table import Table

if TYPE_CHECKING:
    from quoteflow.sweep import Job

TOTALS = ("events", "fills", "volume", "fees", "realized_pnl", "unrealized_pnl", "net_pnl",
          "intents", "dead_letters")


def markouts_over_instruments(per_instrument: dict[str, dict]) -> dict[str, dict]:
    """Per horizon: the fills measured and their mean markout in bps, weighted by count (bps
    stay comparable across instruments of different prices; quote-currency means do not)."""
    merged: dict[str, dict] = {}
    for horizons in per_instrument.values():
        for label, stats in horizons.items():
            entry = merged.setdefault(label, {"count": 0, "bps_sum": 0.0})
            if stats["count"]:
                entry["count"] += stats["count"]
                entry["bps_sum"] += stats["mean_bps"] * stats["count"]
    return {
        label: {"count": e["count"], "mean_bps": e["bps_sum"] / e["count"] if e["count"] else None}
        for label, e in merged.items()
    }


def result_row(job: Job, summary: dict) -> dict:
    """One run: what was run and what the backtest summary reports about it."""
    return {
        "run_id": job.run_id,
        "strategy": job.strategy,
        "recording": list(job.recording),
        "params": dict(job.params),
        **{name: summary[name] for name in TOTALS},
        "markouts": markouts_over_instruments(summary["markouts"]),
        "instruments": {
            key: {"fills": s["fills"], "net_pnl": s["net_pnl"], "markouts": s["markouts"],
                  "max_abs_inventory": s["max_abs_inventory"]}
            for key, s in summary["instruments"].items()
        },
        "untraded": summary["untraded"],
    }


def run_file(out_dir: Path, run_id: str) -> Path:
    return out_dir / "runs" / f"{run_id}.json"


def write_run(out_dir: Path, row: dict) -> None:
    """Atomically: a run file that exists is a complete run."""
    path = run_file(out_dir, row["run_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as file:
        json.dump(row, file, indent=1)
    os.replace(tmp, path)


def read_run(out_dir: Path, run_id: str) -> dict | None:
    try:
        return json.loads(run_file(out_dir, run_id).read_text())
    except (OSError, ValueError):
        return None


def write_table(rows: Sequence[dict], out_dir: Path, meta: dict) -> tuple[Path, Path]:
    """results.json (the sweep and every run) and results.csv (one flat line per run)."""
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps({**meta, "runs": list(rows)}, indent=1))
    params = list(dict.fromkeys(name for row in rows for name in row["params"]))
    horizons = list(dict.fromkeys(h for row in rows for h in row["markouts"]))
    header = ["run_id", "strategy", "recording", *params, *TOTALS,
              *(f"markout_{h}_{k}" for h in horizons for k in ("bps", "count"))]
    csv_path = out_dir / "results.csv"
    with csv_path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            markouts = [row["markouts"].get(h, {}).get(k) for h in horizons
                        for k in ("mean_bps", "count")]
            writer.writerow([
                row["run_id"], row["strategy"], "+".join(row["recording"]),
                *(row["params"].get(p, "") for p in params), *(row[t] for t in TOTALS),
                *("" if m is None else m for m in markouts),
            ])
    return json_path, csv_path


def best_table(rows: Sequence[dict], limit: int = 10) -> Table:
    table = Table(title=f"sweep: best {min(limit, len(rows))} of {len(rows)} runs by net PnL",
                  title_justify="left")
    for column in ("params", "recording", "fills", "net PnL", "markout 1s bps"):
        table.add_column(column, justify="left" if column in ("params", "recording") else "right")
    for row in sorted(rows, key=lambda r: r["net_pnl"], reverse=True)[:limit]:
        one_second = row["markouts"].get("1s", {}).get("mean_bps")
        table.add_row(
            ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "defaults",
            "+".join(Path(p).name for p in row["recording"]), f"{row['fills']:,}",
            f"{row['net_pnl']:+.4f}", "-" if one_second is None else f"{one_second:+.2f}",
        )
    return table


def write_chart(rows: Sequence[dict], out_dir: Path) -> Path | None:
    """A column per parameter: net PnL (top) and mean markout per horizon (bottom) against
    its value, one colour per recording; other parameters vary within each column."""
    params = list(dict.fromkeys(name for row in rows for name in row["params"]))
    if not rows or not params:
        return None
    horizons = list(dict.fromkeys(h for row in rows for h in row["markouts"] if h != "at_fill"))
    recordings = list(dict.fromkeys("+".join(Path(p).name for p in r["recording"]) for r in rows))
    fig, axes = plt.subplots(2, len(params), figsize=(4.5 * len(params), 6.5), squeeze=False,
                             sharey="row")
    for column, name in enumerate(params):
        ax_pnl, ax_markout = axes[0][column], axes[1][column]
        for index, recording in enumerate(recordings):
            mine = [r for r in rows if "+".join(Path(p).name for p in r["recording"]) == recording]
            xs = [float(r["params"][name]) for r in mine]
            ax_pnl.scatter(xs, [r["net_pnl"] for r in mine], s=18, color=f"C{index}",
                           label=recording)
            for h_index, horizon in enumerate(horizons):
                means = [r["markouts"].get(horizon, {}).get("mean_bps") for r in mine]
                points = [(x, m) for x, m in zip(xs, means, strict=True) if m is not None]
                if points:
                    ax_markout.scatter(*zip(*points, strict=True), s=14, color=f"C{index}",
                                       marker="ov^sD"[h_index % 5],
                                       label=f"{horizon}" if index == 0 else None)
        values = sorted({float(r["params"][name]) for r in rows})
        for ax in (ax_pnl, ax_markout):
            ax.axhline(0.0, color="grey", lw=0.5)
            ax.set_xlabel(name)
            if _spans_decades(rows, name):
                ax.set_xscale("log")
            if len(values) <= 8:  # a grid: its own values as ticks
                ax.set_xticks(values, [f"{v:g}" for v in values])
                ax.minorticks_off()
        ax_pnl.set_title(f"net PnL over {name}")
        ax_markout.set_title(f"mean markout over {name}")
    axes[0][0].set_ylabel("net PnL (quote currency, after fees)")
    axes[1][0].set_ylabel("markout, bps (shape: horizon)")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "sweep.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _spans_decades(rows: Sequence[dict], name: str) -> bool:
    values = [float(r["params"][name]) for r in rows if name in r["params"]]
    return min(values) > 0 and max(values) / min(values) >= 100
