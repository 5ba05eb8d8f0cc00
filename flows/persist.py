"""The persist flow: events from every topic into PostgreSQL/TimescaleDB.

Wiring only. Input items are chunks (lists) of events in stream order, as in the quote
flow; they are grouped by instrument and written through `connectors.timescale`'s sink,
whose partitions batch them into COPYs. The source may be in-memory (tests, backfills) or
Kafka topics: the flow does not care which.

On Kafka (`build_persist_kafka_flow`) it is exactly-once: each chunk names its Kafka
partition and the sink commits that partition's offset in the transaction of its rows; the
source resumes every partition from the database (`connectors.timescale.positions`).
"""

from __future__ import annotations

from collections.abc import Callable

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source

from connectors.kafka import KafkaConfig
from connectors.kafka.bytewax_io import KafkaEventSource
from connectors.kafka.topics import TOPICS
from connectors.timescale import TimescaleConfig, TimescaleSink, WriterStats, route
from connectors.timescale.source import PositionedSource
from flows.runner import Recovery, run_dataflow


def build_persist_flow(
    source: Source,
    config: TimescaleConfig,
    flow_id: str = "persist",
    on_close: Callable[[str, WriterStats], None] | None = None,
    consumer: str | None = None,
) -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("events", flow, source)
    keyed = op.flat_map("by_instrument", chunks, route)
    op.output("timescale", keyed, TimescaleSink(config, on_close, consumer))
    return flow


def build_persist_kafka_flow(
    kafka: KafkaConfig, config: TimescaleConfig, *, tail: bool = True, flow_id: str = "persist"
) -> Dataflow:
    """Every topic, exactly once; the offsets are stored under the flow id."""
    events = KafkaEventSource(kafka, [t.name for t in TOPICS], tail=tail)
    source = PositionedSource(events, config, consumer=flow_id)
    return build_persist_flow(source, config, flow_id, consumer=flow_id)


def run_persist(
    kafka: KafkaConfig,
    config: TimescaleConfig,
    recovery: Recovery | None = None,
    *,
    tail: bool = True,
) -> None:
    run_dataflow(build_persist_kafka_flow(kafka, config, tail=tail), recovery or Recovery())
