"""The quote flow: market events in, per-instrument trading state, events out.

Wiring only. Input items are chunks (lists) of market events in stream order; each
instrument's state (`session`: in the Kafka deployment the `QuoteSession`, in the embedded
default and backtests the `PaperTrader` that adds the executor and the paper venue on the
same clocks) turns them into intents, order events, fills and position samples
(`flows.operators.per_key_state`). Dead letters skip the state and go straight out.

Run it on in-memory connectors (`connectors.memory`) or on Kafka with the same code:
`python -m bytewax.run "flows.quote:..."` takes any function returning the Dataflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.operators import instrument_key, per_key_state
from models.events import Event

__all__ = ["Session", "build_quote_flow", "instrument_key"]


class Session(Protocol):
    def on_event(self, event: Any) -> list[Event]: ...

    def close(self) -> list[Event]: ...


def build_quote_flow(
    sources: Source | Mapping[str, Source],
    sink: Sink,
    new_session: Callable[[str], Session],
    flow_id: str = "quote",
) -> Dataflow:
    """`sources` is one source of market events, or several by name (market data, our own
    fills, predictions) merged into one stream."""
    flow = Dataflow(flow_id)
    if isinstance(sources, Mapping):
        inputs = [op.input(name, flow, source) for name, source in sources.items()]
        chunks = op.merge("inputs", *inputs)
    else:
        chunks = op.input("market", flow, sources)
    events = per_key_state(
        "instrument_state", chunks, lambda first: new_session(instrument_key(first))
    )
    op.output("events", events, sink)
    return flow
