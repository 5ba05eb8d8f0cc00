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
from bytewax.outputs import Sink

from flows.operators import per_key_state
from models.predictor import PredictorConfig, PredictSession


def build_predict_flow(
    source: Source,
    sink: Sink,
    config: PredictorConfig,
    flow_id: str = "predict",
) -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("market", flow, source)
    predictions = per_key_state(
        "instrument_predictor", chunks,
        lambda first: PredictSession(first.venue, first.symbol, config),
        keep_dead_letters=False,
    )
    op.output("predictions", predictions, sink)
    return flow
