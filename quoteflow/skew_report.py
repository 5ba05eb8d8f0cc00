"""Alpha skew measured: the realistic backtest with and without the prediction's skew.

The quote session shifts its reservation price by `prediction_weight` × the latest
prediction's expected move (`models.quote_session`). Here the predictions are the predict
flow's own (`models.predictor.PredictSession`, River logistic regression), made from a model
first trained on other recordings (`train`) and then walking the evaluated one
prequentially, so no forecast has seen its own outcome. Each prediction enters the quote
session at the moment the predict flow would emit it (before the event that triggers it),
and everything else is `quoteflow backtest`'s path: the production quote session, executor
and the causal paper venue (`connectors.paper.trading.PaperTrader`).

The runs differ only in the weight. Error bars: each run is marked to market every second
of the exchange clock, the fills' own, on the same mids (`quoteflow.suggest.pnl_path`); the
per-second differences against the unskewed run get a block-bootstrap standard error
(`models.evaluation`, 30 s blocks).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
from bytewax.testing import run_main

from connectors.memory import CallbackSink, ChunkedSource
from connectors.paper.trading import PaperTrader
from flows.quote import build_quote_flow
from models.evaluation import mean_and_se
from models.events import Prediction
from models.predictor import MODELS, PredictorConfig, PredictSession
from models.quote_session import QuoteSessionOptions
from quoteflow.results import RunResults, summarize
from quoteflow.sessions import SessionRegistry, TradingOptions
from quoteflow.suggest import exchange_seconds, load_events, mids_per_second, pnl_path

BLOCK_S = 30


@dataclass(frozen=True)
class SkewOptions(TradingOptions):
    prediction_weight: float = 0.0

    def quoting(self) -> QuoteSessionOptions:
        return msgspec.structs.replace(
            super().quoting(), prediction_weight=self.prediction_weight
        )


class _WithPredictions:
    """A paper trader whose quote session also hears the predictions (state only)."""

    def __init__(self, trader: PaperTrader) -> None:
        self.trader = trader

    def on_event(self, event):
        if type(event) is Prediction:
            return self.trader.quoting.on_event(event)  # sets the skew; quotes on the next tick
        return self.trader.on_event(event)

    def close(self):
        return self.trader.close()


class _Registry(SessionRegistry):
    def __call__(self, key: str):
        session = super().__call__(key)
        return _WithPredictions(session) if isinstance(session, PaperTrader) else session


def with_predictions(train: list, events: list, config: PredictorConfig) -> list:
    """`events` with the predict flow's predictions interleaved where it would emit them;
    the model learns `train` first (no predictions kept from it)."""
    model = MODELS[config.model]()
    sessions: dict[str, PredictSession] = {}
    for event in train:
        session = sessions.setdefault(
            event.key, PredictSession(event.venue, event.symbol, config, model=model)
        )
        session.on_event(event)
    sessions = {}
    out: list = []
    for event in events:
        session = sessions.setdefault(
            event.key, PredictSession(event.venue, event.symbol, config, model=model)
        )
        out.extend(session.on_event(event))
        out.append(event)
    return out


def run(events: list, options: SkewOptions) -> tuple[dict, RunResults]:
    registry = _Registry(options)
    results = RunResults()
    flow = build_quote_flow(ChunkedSource(iter(events), chunk_size=512),
                            CallbackSink(results.collect), registry)
    started = time.perf_counter()
    run_main(flow)
    summary = summarize(registry, results, len(events), time.perf_counter() - started)
    return summary, results


def skew_report(
    data: Sequence[Path], train: Sequence[Path], weights: Sequence[float], *,
    strategy: str = "avellaneda-stoikov-infinite", params: dict[str, str] | None = None,
    horizon_ms: int = 1000,
) -> dict:
    config = PredictorConfig(horizon_ns=horizon_ms * 1_000_000)
    events = load_events(data)
    stream = with_predictions(load_events(train), events, config)
    mids, grid = mids_per_second(events), exchange_seconds(events)  # the fills' clock
    runs: dict[float, dict] = {}
    paths: dict[float, np.ndarray] = {}
    for weight in weights:
        options = SkewOptions(strategy=strategy, params=params or {},
                              prediction_weight=weight)
        summary, results = run(stream, options)
        paths[weight] = pnl_path(results.fills, mids, grid)
        runs[weight] = {
            "net_pnl": summary["net_pnl"],
            "fills": summary["fills"],
            "fees": summary["fees"],
            "markouts": {k: v for k, v in summary["markouts"].items()},
        }
    base = weights[0]
    for weight in weights:
        increments = np.diff(paths[weight] - paths[base], prepend=0.0)
        _, se = mean_and_se(increments, block=BLOCK_S)
        runs[weight]["vs_first"] = {
            "pnl": float(paths[weight][-1] - paths[base][-1]), "se": se * len(increments)
        }
    return {"data": [str(p) for p in data], "train": [str(p) for p in train],
            "strategy": strategy, "params": params or {}, "horizon_ms": horizon_ms,
            "runs": {str(w): r for w, r in runs.items()}}
