"""The surveillance flow: our order events and fills in, `SurveillanceAlert`s out
(topic `surveillance.alerts`).

Wiring only; the detectors are `models.surveillance`. Input items are chunks (lists) of
`orders.events` in stream order (acks, fills, cancels, rejects, amends, position samples),
split per instrument (`venue:symbol`) so one instrument's events stay in order on one worker;
each instrument's `InstrumentSurveillance` turns them into alerts. The account is the
deployment's: `orders.events` is keyed by it, one account per deployment. Dead letters
(messages that could not be read) go out as they came, to the dead-letter topic.

Runs on in-memory connectors or on Kafka (`build_surveillance_kafka_flow`) with the same code;
`quoteflow flow surveillance` starts it (flows/processes.py).
"""

from __future__ import annotations

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from connectors.kafka import KafkaConfig
from connectors.kafka.bytewax_io import KafkaEventSink
from connectors.kafka.flow_io import CoPartitionedSource
from flows.operators import per_key_state
from models.surveillance import InstrumentSurveillance, SurveillanceConfig

INPUT_TOPICS = ("orders.events",)


def build_surveillance_flow(
    source: Source,
    sink: Sink,
    config: SurveillanceConfig,
    account: str,
    flow_id: str = "surveillance",
) -> Dataflow:
    flow = Dataflow(flow_id)
    chunks = op.input("orders", flow, source)
    alerts = per_key_state(
        "instrument_surveillance", chunks,
        lambda first: InstrumentSurveillance(first.venue, first.symbol, account, config),
    )
    op.output("alerts", alerts, sink)
    return flow


def build_surveillance_kafka_flow(
    kafka: KafkaConfig, config: SurveillanceConfig, *, tail: bool = True
) -> Dataflow:
    """`orders.events` → `surveillance.alerts` (+ dead letters) on the configured Kafka; the
    alerts name `config.account`, or the deployment's `[kafka] account` when it is empty."""
    source = CoPartitionedSource(kafka, INPUT_TOPICS, tail=tail)
    return build_surveillance_flow(
        source, KafkaEventSink(kafka), config, config.account or kafka.account
    )
