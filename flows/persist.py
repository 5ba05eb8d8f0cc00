"""The persist flow: events from every topic into PostgreSQL/TimescaleDB.

Wiring only. Input items are chunks (lists) of events in stream order, as in the quote
flow; they are grouped by instrument and written through `connectors.timescale`'s sink,
whose partitions batch them into COPYs. The source may be in-memory (tests, backfills) or
Kafka topics: the flow does not care which.
"""

from __future__ import annotations

from collections.abc import Callable

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source

from connectors.timescale import TimescaleConfig, TimescaleSink, WriterStats, route


def build_persist_flow(
    source: Source,
    config: TimescaleConfig,
    flow_id: str = "persist",
    on_close: Callable[[str, WriterStats], None] | None = None,
) -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("events", flow, source)
    keyed = op.flat_map("by_instrument", chunks, route)
    op.output("timescale", keyed, TimescaleSink(config, on_close))
    return flow
