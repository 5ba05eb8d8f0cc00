"""The arbitrage flow: market events in, `ArbSignal`s out (topic `signals.arb`).

Wiring only; the logic is `models.arbitrage`. Input items are chunks (lists) of market
events in stream order. They are split by asset group (`BASE/QUOTE`, see
`models.arbitrage.AssetGrouper`), so one worker holds every leg of a pair, and each group's
`ArbitrageEngine` turns them into signals. Dead letters go to their own key, where the
engine counts them and passes them through untouched; items with no group (unsupported
symbols, non-events) go to another, where they are counted.

Runs on in-memory connectors (`connectors.memory`) or on Kafka with the same code.
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.operators import per_key_state
from models.arbitrage import ArbitrageConfig, ArbitrageEngine, AssetGrouper


def build_arbitrage_flow(
    source: Source,
    sink: Sink,
    config: ArbitrageConfig,
    flow_id: str = "arbitrage",
) -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("market", flow, source)
    signals = per_key_state(
        "pair_state", chunks, lambda first: ArbitrageEngine(config),
        key_of=AssetGrouper(config.quote_aliases).route,
    )
    op.output("signals", signals, sink)
    return flow
