"""The predict flow: market events in, per-instrument `Prediction`s out (`signals.pred`).

Wiring only, in the quote flow's shape: input items are chunks (lists) of market events in
stream order, split per instrument (`venue:symbol`) so one key's events stay in order on one
worker; each instrument's `models.predictor.PredictSession` turns them into predictions.
Dead letters are dropped here: ingest has already counted them and sent them to the
dead-letter topic, and they say nothing about the market.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from flows.quote import split_by_instrument
from models.events import DeadLetter, Prediction
from models.predictor import PredictorConfig, PredictSession


class _PredictLogic(StatefulLogic):
    def __init__(self, config: PredictorConfig, session: PredictSession | None):
        self._config = config
        self._session = session

    # Outputs leave as one list per chunk: Bytewax's cost is per item, not per event.
    def on_item(self, value: list) -> tuple[list[list[Prediction]], bool]:
        first = value[0]
        if isinstance(first, DeadLetter):
            return [], StatefulLogic.DISCARD
        session = self._session
        if session is None:
            session = self._session = PredictSession(first.venue, first.symbol, self._config)
        on_event = session.on_event
        out: list[Prediction] = []
        for event in value:
            out.extend(on_event(event))
        return ([out] if out else []), StatefulLogic.RETAIN

    def snapshot(self) -> PredictSession | None:
        return self._session


def build_predict_flow(
    source: Source,
    sink: Sink,
    config: PredictorConfig,
    flow_id: str = "predict",
) -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("market", flow, source)
    per_instrument = op.flat_map("by_instrument", chunks, split_by_instrument)
    predicted = op.stateful(
        "instrument_predictor", per_instrument, lambda resume: _PredictLogic(config, resume)
    )
    predictions = op.flat_map("unkey", predicted, _unkey)
    op.output("predictions", predictions, sink)
    return flow


def _unkey(item: tuple[str, list[Prediction]]) -> list[Prediction]:
    return item[1]
