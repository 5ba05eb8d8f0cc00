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

from collections.abc import Iterable

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from models.arbitrage import ArbitrageConfig, ArbitrageEngine, AssetGrouper
from models.events import Event


class _GroupLogic(StatefulLogic):
    def __init__(self, config: ArbitrageConfig, engine: ArbitrageEngine | None):
        self._engine = engine if engine is not None else ArbitrageEngine(config)

    # Outputs leave as one list per chunk: Bytewax's cost is per item, not per event.
    def on_item(self, value: list) -> tuple[list[list[Event]], bool]:
        on_event = self._engine.on_event
        out: list[Event] = []
        for event in value:
            out.extend(on_event(event))
        return ([out] if out else []), StatefulLogic.RETAIN

    def snapshot(self) -> ArbitrageEngine:
        return self._engine


def build_arbitrage_flow(
    source: Source,
    sink: Sink,
    config: ArbitrageConfig,
    flow_id: str = "arbitrage",
) -> Dataflow:
    route = AssetGrouper(config.quote_aliases).route

    def split_by_group(chunk: list) -> Iterable[tuple[str, list]]:
        groups: dict[str, list] = {}
        for item in chunk:
            key = route(item)
            group = groups.get(key)
            if group is None:
                groups[key] = [item]
            else:
                group.append(item)
        return groups.items()

    flow = Dataflow(flow_id)
    chunks = op.input("market", flow, source)
    per_group = op.flat_map("by_asset", chunks, split_by_group)
    signals = op.stateful("pair_state", per_group, lambda resume: _GroupLogic(config, resume))
    events = op.flat_map("unkey", signals, _unkey)
    op.output("signals", events, sink)
    return flow


def _unkey(item: tuple[str, list[Event]]) -> list[Event]:
    return item[1]
