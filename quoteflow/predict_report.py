"""`quoteflow predict-report`: prequential accuracy of the direction model on recordings.

The recordings' events go straight through one `PredictSession` per instrument — what the
predict flow runs, without Bytewax around it (the flow tests check both give the same
predictions) — and the whole-run scores are printed as a table, with a PNG per run of the
rolling accuracy against the stronger naive baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs on machines without a display
import matplotlib.pyplot as plt
import numpy as np
from rich.console import Console
from rich.table import Table

from connectors.replay.recordings import Recordings
from models.events import DeadLetter, Prediction
from models.predictor import PredictorConfig, PredictSession

_COLUMNS = (
    ("moves", "moves", "{:,}"),
    ("flats", "flats", "{:,}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("last_move_accuracy", "last-move acc.", "{:.3f}"),
    ("majority_accuracy", "majority acc.", "{:.3f}"),
    ("log_loss", "log-loss", "{:.3f}"),
    ("baseline_log_loss", "base-rate log-loss", "{:.3f}"),
)


def predict_events(
    events: Iterable, config: PredictorConfig
) -> tuple[dict[str, PredictSession], dict[str, list[Prediction]]]:
    """Each instrument's session and predictions; dead letters are skipped as in the flow."""
    sessions: dict[str, PredictSession] = {}
    predictions: dict[str, list[Prediction]] = {}
    for event in events:
        if isinstance(event, DeadLetter):
            continue
        key = event.key
        session = sessions.get(key)
        if session is None:
            session = sessions[key] = PredictSession(event.venue, event.symbol, config)
            predictions[key] = []
        predictions[key].extend(session.on_event(event))
    return sessions, predictions


def predict_report(
    paths: Sequence[Path],
    config: PredictorConfig,
    *,
    chart_dir: Path | None = None,
    console: Console | None = None,
) -> dict:
    """Replay `paths`, print the per-instrument scores, optionally chart them.

    Returns `{"config": ..., "instruments": [row, ...], "charts": [path, ...]}`, a row being
    the instrument's whole-run `PrequentialScore.totals()` plus its key.
    """
    console = console or Console(stderr=True)
    sessions, predictions = predict_events(Recordings(paths).events(), config)
    rows = []
    for key, session in sorted(sessions.items()):
        totals = session.score.totals()
        if totals is not None:
            rows.append({"instrument": key, **totals})
    console.print(_table(rows, config))
    charts = []
    if chart_dir is not None and rows:
        charts.append(_accuracy_chart(predictions, config, chart_dir))
        console.print(f"chart: {charts[0]}")
    return {
        "config": {
            "model": config.model,
            "horizon_ns": config.horizon_ns,
            "sample_interval_ns": config.sample_interval_ns,
        },
        "instruments": rows,
        "charts": charts,
    }


def _table(rows: list[dict], config: PredictorConfig) -> Table:
    table = Table(
        title=f"{config.model}, horizon {config.horizon_ns / 1e9:g} s, "
        f"sampled every {config.sample_interval_ns / 1e6:g} ms",
        title_justify="left",
    )
    table.add_column("instrument")
    for _, header, _ in _COLUMNS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(row["instrument"], *(fmt.format(row[name]) for name, _, fmt in _COLUMNS))
    return table


def _accuracy_chart(
    predictions: dict[str, list[Prediction]], config: PredictorConfig, directory: Path
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    scored = {
        key: [p for p in items if p.rolling_accuracy is not None]
        for key, items in sorted(predictions.items())
    }
    scored = {key: items for key, items in scored.items() if items}
    fig, axes = plt.subplots(
        len(scored), 1, figsize=(10, 2.6 * len(scored)), sharex=True, squeeze=False
    )
    for ax, (key, items) in zip(axes[:, 0], scored.items(), strict=True):
        times = np.array([p.ts for p in items], dtype="datetime64[ns]")
        ax.plot(times, [p.rolling_accuracy for p in items], lw=0.9, label=config.model)
        ax.plot(
            times, [p.baseline_accuracy for p in items], lw=0.9, color="grey",
            label="best naive rule",
        )
        ax.axhline(0.5, color="black", lw=0.4)
        ax.set_ylim(0.3, 1.0)
        ax.set_title(key, fontsize=9)
        ax.set_ylabel("accuracy")
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"Rolling accuracy of the mid's direction over {config.horizon_ns / 1e9:g} s "
        f"(last {config.metrics_window} horizons)"
    )
    fig.tight_layout()
    path = directory / f"predict-accuracy-{config.model}-{config.horizon_ns // 1_000_000}ms.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
