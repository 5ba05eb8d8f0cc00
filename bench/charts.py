"""The benchmarks' charts: throughput per stage, and latency distributions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: files only, no display
import matplotlib.pyplot as plt
import numpy as np


def throughput_chart(summary: dict, baseline: dict | None, target: float, path: Path) -> Path:
    """Horizontal bars of events/s per stage; an earlier run's bars beside them if given."""
    names = list(summary["results"])
    rates = [summary["results"][name]["events_per_second"] for name in names]
    rows = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(names) + 1.8))
    height = 0.38 if baseline else 0.6
    if baseline:
        before = [baseline["results"].get(name, {}).get("events_per_second", 0) for name in names]
        ax.barh(rows + height / 2, before, height, color="#bbbbbb", label="before")
        ax.barh(rows - height / 2, rates, height, color="#1f77b4", label="now")
    else:
        ax.barh(rows, rates, height, color="#1f77b4")
    for row, rate in zip(rows, rates, strict=True):
        ax.text(rate, row - (height / 2 if baseline else 0), f" {rate:,.0f}", va="center")
    ax.axvline(target, color="#d62728", linestyle="--", label=f"target {target:,.0f} ev/s")
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.set_xlabel("events per second (best of runs, one core)")
    ax.set_title(f"backtest throughput: {Path(summary['data']).name}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def latency_chart(
    samples_ns: dict[str, np.ndarray], baseline: dict | None, target_us: float, path: Path
) -> Path:
    """Empirical CDFs on a log time axis, the p99 target marked; baseline p99s as dots."""
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, samples in samples_ns.items():
        us = np.sort(samples) / 1e3
        fraction = np.arange(1, us.size + 1) / us.size
        (line,) = ax.plot(us, fraction, label=name)
        if baseline and name in baseline["results"]:
            ax.plot(baseline["results"][name]["p99"], 0.99, "o", mfc="none",
                    color=line.get_color(), label=f"{name}: p99 before")
    ax.axvline(target_us, color="#d62728", linestyle="--", label=f"p99 target {target_us:,.0f} µs")
    ax.axhline(0.99, color="#999999", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("µs (log scale)")
    ax.set_ylabel("fraction of intents at or below")
    ax.set_title("tick-to-intent latency (flow) and step compute time, CDF")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
