"""`quoteflow predict-report`: an honest, walk-forward evaluation of the direction models.

Each recording's events go through one `models.features.GridSampler` per instrument (the
predict flow's clock and features), then `models.walk_forward` scores every model and
baseline prequentially, per horizon and per task (two classes: flats left out; three
classes: flats kept), with block-bootstrap standard errors from `models.evaluation`.

With `train` files, every forecaster first learns on them (unscored), and the model to
recommend for each horizon and task is chosen there, by prequential log-loss on the training
stream; the evaluation files are then walked and scored. The evaluation instruments must
not be among the training ones. Without `train`, each evaluation stream starts from scratch.

The comparison with the baselines leans in their favour: the "best baseline" is picked
after the fact on each evaluation stream, separately for accuracy and for log-loss.
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
from models.evaluation import block_length, compare
from models.events import DeadLetter, Prediction
from models.features import FeatureConfig, GridSampler, Sample
from models.predictor import PredictorConfig, PredictSession
from models.walk_forward import BASELINES, TASKS, Labelled, evaluate

DEFAULT_HORIZONS_MS = (100, 1000, 5000)
DEFAULT_MODELS = ("logreg", "logreg_interactions")  # --model amf: best at 100 ms, far slower
MAX_GAP_NS = 60_000_000_000
_MS = 1_000_000


def predict_events(
    events: Iterable, config: PredictorConfig
) -> tuple[dict[str, PredictSession], dict[str, list[Prediction]]]:
    """Each instrument's session and predictions, as the predict flow makes them."""
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


def sample_recordings(
    paths: Sequence[Path], sample_ms: int = 100, features: FeatureConfig | None = None
) -> dict[str, list[Sample]]:
    """Every instrument's samples on the grid; dead letters are skipped as in the flow."""
    features = features or FeatureConfig()
    samplers: dict[str, GridSampler] = {}
    samples: dict[str, list[Sample]] = {}
    for event in Recordings(paths).events():
        if isinstance(event, DeadLetter):
            continue
        key = event.key
        sampler = samplers.get(key)
        if sampler is None:
            sampler = samplers[key] = GridSampler(
                event.venue, event.symbol, features, sample_ms * _MS, MAX_GAP_NS
            )
            samples[key] = []
        samples[key].extend(sampler.on_event(event))
    return samples


def predict_report(
    data: Sequence[Path],
    *,
    train: Sequence[Path] = (),
    horizons_ms: Sequence[int] = DEFAULT_HORIZONS_MS,
    models: Sequence[str] = DEFAULT_MODELS,
    sample_ms: int = 100,
    n_boot: int = 500,
    min_samples: int = 200,
    chart_dir: Path | None = None,
    console: Console | None = None,
) -> dict:
    """Score `models` and the baselines on `data`, after training on `train`.

    Raises ValueError for a horizon off the sample grid, an evaluation instrument that is
    also a training one, or no instrument to score. Instruments with fewer than
    `min_samples` samples are skipped (listed under "skipped").
    """
    console = console or Console(stderr=True)
    for horizon in horizons_ms:
        if horizon % sample_ms:
            raise ValueError(f"horizon {horizon} ms is not a multiple of the {sample_ms} ms grid")
    train_streams = sample_recordings(train, sample_ms) if train else {}
    test_streams = sample_recordings(data, sample_ms)
    overlap = sorted(set(train_streams) & set(test_streams))
    if overlap:
        raise ValueError(f"evaluated instruments are also training ones: {', '.join(overlap)}")
    skipped = sorted(k for k, s in test_streams.items() if len(s) < min_samples)
    test_streams = {k: s for k, s in sorted(test_streams.items()) if k not in skipped}
    if not test_streams:
        raise ValueError(
            f"no instrument in the data has {min_samples} samples to score"
            + (f" (too short: {', '.join(skipped)})" if skipped else "")
        )
    names = [*BASELINES, *models]
    results: list[dict] = []
    chosen: dict[str, str] = {}
    for horizon in horizons_ms:
        horizon_ns = horizon * _MS
        for task, classes in TASKS.items():
            pretrained = None
            if train_streams:
                train_labelled = [Labelled(s, horizon_ns) for s in train_streams.values()]
                chosen[f"{horizon}ms/{task}"] = _choose(train_labelled, models, classes)
            else:
                train_labelled = []
            for key, samples in test_streams.items():
                stream = Labelled(samples, horizon_ns)
                scores, fitted = evaluate(train_labelled, stream, names, classes, pretrained)
                if train_streams:
                    pretrained = fitted  # one training serves every evaluation stream
                row = _summary(stream, scores, names, horizon, sample_ms, n_boot)
                row.update(instrument=key, task=task, horizon_ms=horizon)
                model = chosen.get(f"{horizon}ms/{task}") or _best(row, models, "log_loss")
                row["model"] = model
                row["vs_best_baseline"] = _margin(row, model)
                results.append(row)
                console.print(_table(row))
    report = {
        "protocol": {
            "sample_ms": sample_ms,
            "horizons_ms": list(horizons_ms),
            "tasks": {name: list(classes) for name, classes in TASKS.items()},
            "train_files": [str(p) for p in train],
            "train_instruments": sorted(train_streams),
            "data_files": [str(p) for p in data],
            "models": list(models),
            "baselines": list(BASELINES),
            "bootstrap": {"resamples": n_boot, "kind": "moving block, circular"},
            "model_choice": "prequential log-loss on the training stream"
            if train_streams
            else "best log-loss on each evaluation stream (in-sample choice)",
        },
        "chosen_models": chosen,
        "results": results,
        "skipped": skipped,
        "charts": [],
    }
    if chart_dir is not None and results:
        chart = _chart(results, chart_dir)
        report["charts"].append(str(chart))
        console.print(f"chart: {chart}")
    return report


def _choose(train: list[Labelled], models: Sequence[str], classes: Sequence[int]) -> str:
    """The model with the best prequential log-loss over the training streams."""
    best, best_loss = models[0], np.inf
    for model in models:
        losses = []
        for i, stream in enumerate(train):
            scores, _ = evaluate(train[:i], stream, [model], classes)
            losses.append(scores[model][1])
        loss = float(np.nanmean(np.concatenate(losses))) if losses else np.inf
        if loss < best_loss:
            best, best_loss = model, loss
    return best


def _summary(
    stream: Labelled, scores: dict, names: Sequence[str], horizon: int, sample_ms: int,
    n_boot: int,
) -> dict:
    labelled = [label for label in stream.labels if label is not None]
    block = block_length(horizon // sample_ms, len(stream.ts))
    accuracy = compare({n: scores[n][0] for n in names}, block, n_boot)
    log_loss = compare({n: scores[n][1] for n in names}, block, n_boot)
    rows = {
        name: {
            "accuracy": accuracy[name]["mean"],
            "accuracy_se": accuracy[name]["se"],
            "log_loss": log_loss[name]["mean"],
            "log_loss_se": log_loss[name]["se"],
            "se_diff": {
                other: {
                    "accuracy": accuracy[name][f"se_diff_{other}"],
                    "log_loss": log_loss[name][f"se_diff_{other}"],
                }
                for other in BASELINES
                if other != name
            },
        }
        for name in names
    }
    return {
        "samples": len(stream.ts),
        "scored": accuracy[names[0]]["n"],
        "flat_share": labelled.count(0) / len(labelled) if labelled else float("nan"),
        "block_samples": block,
        "scores": rows,
    }


def _best(row: dict, names: Iterable[str], metric: str) -> str:
    scores = row["scores"]
    sign = -1.0 if metric == "accuracy" else 1.0
    return min(names, key=lambda n: sign * scores[n][metric])


def _margin(row: dict, model: str) -> dict:
    """Model − best baseline per metric (positive = model better), in units of its SE."""
    out = {}
    for metric, sign in (("accuracy", 1.0), ("log_loss", -1.0)):
        baseline = _best(row, BASELINES, metric)
        gain = sign * (row["scores"][model][metric] - row["scores"][baseline][metric])
        se = row["scores"][model]["se_diff"][baseline][metric]
        out[metric] = {
            "baseline": baseline,
            "gain": gain,
            "se_diff": se,
            "gain_in_se": gain / se if se > 0 else float("nan"),
        }
    out["beats_by_2se"] = all(out[m]["gain"] >= 2 * out[m]["se_diff"] for m in out)
    return out


def _table(row: dict) -> Table:
    margin = row["vs_best_baseline"]
    table = Table(
        title=f"{row['instrument']} · {row['horizon_ms']} ms · {row['task']} · "
        f"{row['scored']:,} scored, flat share {row['flat_share']:.2f} · "
        f"block {row['block_samples']} samples",
        title_justify="left",
    )
    for header in ("forecaster", "accuracy", "± SE", "log-loss", "± SE"):
        table.add_column(header, justify="left" if header == "forecaster" else "right")
    for name, s in row["scores"].items():
        label = f"[bold]{name}[/]" if name == row["model"] else name
        table.add_row(
            label, f"{s['accuracy']:.3f}", f"{s['accuracy_se']:.3f}", f"{s['log_loss']:.3f}",
            f"{s['log_loss_se']:.3f}",
        )
    verdict = "beats" if margin["beats_by_2se"] else "does not beat"
    table.caption = (
        f"{row['model']} {verdict} the best baselines by 2 SE: accuracy "
        f"{margin['accuracy']['gain']:+.3f} ± {margin['accuracy']['se_diff']:.3f} vs "
        f"{margin['accuracy']['baseline']}, log-loss {margin['log_loss']['gain']:+.3f} ± "
        f"{margin['log_loss']['se_diff']:.3f} vs {margin['log_loss']['baseline']}"
    )
    return table


def _chart(results: list[dict], directory: Path) -> Path:
    """Accuracy gain over the best baseline with ±2 SE bars, per stream, horizon and task."""
    directory.mkdir(parents=True, exist_ok=True)
    tasks = list(TASKS)
    fig, axes = plt.subplots(1, len(tasks), figsize=(12, 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = [r for r in results if r["task"] == task]
        labels = [f"{r['instrument']}\n{r['horizon_ms']} ms" for r in rows]
        x = np.arange(len(rows))
        for offset, metric in ((-0.2, "accuracy"), (0.2, "log_loss")):
            gains = [r["vs_best_baseline"][metric]["gain"] for r in rows]
            errors = [2 * r["vs_best_baseline"][metric]["se_diff"] for r in rows]
            ax.bar(x + offset, gains, 0.38, yerr=errors, capsize=3,
                   label=f"{metric.replace('_', '-')} gain ± 2 SE")
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xticks(x, labels, fontsize=6, rotation=60)
        ax.set_title(task.replace("_", " "), fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Chosen model minus the best baseline (positive = model better)")
    fig.tight_layout()
    path = directory / "predict-vs-baselines.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
