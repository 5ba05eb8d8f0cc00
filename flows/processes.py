"""The flows as long-running Kafka processes, built from the configuration (`FlowSettings`).

- quote: `md.book`/`md.bbo`/`md.trades` + `orders.events` (our fills) + `signals.pred` →
  `orders.intents` (+ dead letters), one `models.quote_session.QuoteSession` per instrument;
  and `control` → `control.acks`: operators' signed commands, verified with the `[commands]`
  keys and applied to every cached instrument (`models.flow_control`);
- arbitrage: `md.*` → `signals.arb` (`flows.arbitrage`);
- predict: `md.*` → `signals.pred` (`flows.predict`);
- surveillance: `orders.events` → `surveillance.alerts` (`flows.surveillance`).

Market data is read co-partitioned (`connectors.kafka.flow_io.CoPartitionedSource`), so one
Bytewax partition holds the same instruments on all three `md.*` topics, merged in receive
order: replays and rescaled runs compute the same intents. `run_flow` starts a flow through
`flows.runner` (workers per process, a cluster of processes with -i/-a) with a recovery
directory whose snapshots hold both the per-instrument state and the input offsets, so a
process killed mid-stream resumes from its last snapshot (docs/operations.md).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Protocol

from bytewax.dataflow import Dataflow

from connectors.kafka import KafkaConfig
from connectors.kafka.bytewax_io import KafkaEventSink
from connectors.kafka.command_keys import CommandsConfig, load_verifier
from connectors.kafka.flow_io import CoPartitionedSource
from connectors.venues.market_cache import all_instruments, instrument_for
from flows.arbitrage import build_arbitrage_flow
from flows.halt import FlowHalted, Halt
from flows.lockstep import HaltingLockstepSessions
from flows.predict import build_predict_flow
from flows.quote import build_quote_flow
from flows.runner import RECOVERY_PARTITIONS as RECOVERY_PARTITIONS  # the CLI's recovery init
from flows.runner import run_dataflow
from flows.surveillance import build_surveillance_kafka_flow
from models.arbitrage import ArbitrageConfig
from models.events import Event, HeardThrough
from models.flow_control import CommandGate, StrategyChoice
from models.predictor import PredictorConfig
from models.quote_session import QuoteSessionOptions, QuoteSessions

MARKET_TOPICS = ("md.book", "md.bbo", "md.trades")


class FlowSettings(Protocol):
    """What the flows read of the configuration (`quoteflow.config.Config`): `quote` is its
    `[quote]` section, `recovery` its `[recovery]` section."""

    kafka: KafkaConfig
    quote: Any
    recovery: Any
    surveillance: Any  # its `[surveillance]` section
    commands: CommandsConfig


def quote_options(config: FlowSettings) -> QuoteSessionOptions:
    quote = config.quote
    try:
        lots = Decimal(quote.max_inventory_lots)
    except ArithmeticError:
        raise ValueError(
            f"quote.max_inventory_lots is not a number: {quote.max_inventory_lots!r}"
        ) from None
    return QuoteSessionOptions(
        strategy=quote.strategy,
        params=quote.params,
        max_inventory_lots=lots,
        prediction_weight=quote.prediction_weight,
        requote_ms=quote.requote_ms,
        top_of_book=quote.top_of_book,
    )


def build_quote_kafka_flow(
    kafka: KafkaConfig, options: QuoteSessionOptions, *, tail: bool = True,
    commands: CommandsConfig | None = None, lockstep: bool = False, halt: Halt | None = None,
) -> Dataflow:
    """`flows.quote.build_quote_flow` on Kafka: the same flow the backtests run; with
    `commands`, also steered by the `control` topic (acks on `control.acks`).

    `lockstep`: a replay in turns with `quoteflow execute` (`models.lockstep`): our fills
    are read until the executor's last mark, however long the market data took to read;
    marks for another market stop the flow cleanly with the reason on `halt`
    (`flows.lockstep`; one made here if not given)."""
    if lockstep and halt is None:
        halt = Halt.new("quote")
    # In lockstep our fills are read on until the executor's last mark, not to the topic's end.
    orders = CoPartitionedSource(kafka, ["orders.events"], tail=tail or lockstep, halted=halt,
                                 until=_market_ended if lockstep else None)
    sources = {
        "market": CoPartitionedSource(kafka, MARKET_TOPICS, tail=tail, halted=halt),
        "orders": orders,
        "predictions": CoPartitionedSource(kafka, ["signals.pred"], tail=tail, halted=halt),
    }
    control = {}
    if commands is not None:
        control = {"commands": CoPartitionedSource(kafka, ["control"], tail=tail, halted=halt),
                   "new_gate": _QuoteGate(commands, options)}
    sessions = QuoteSessions(options, instrument_for)
    if lockstep:
        sessions = HaltingLockstepSessions(sessions, halt)
    return build_quote_flow(sources, KafkaEventSink(kafka), sessions, **control)


def _market_ended(event: Event) -> bool:
    return type(event) is HeardThrough and event.final


class _QuoteGate:
    """Makes the quote flow's command gate: the configured keys and strategy, the cached
    instruments (each hears of every change, so one quoted later starts from it)."""

    def __init__(self, commands: CommandsConfig, options: QuoteSessionOptions):
        self._commands = commands
        self._configured = StrategyChoice(strategy=options.strategy, params=dict(options.params))

    def __call__(self) -> CommandGate:
        return CommandGate("quote", load_verifier(self._commands), self._configured,
                           sorted(all_instruments()), time.time_ns)


def build_arbitrage_kafka_flow(kafka: KafkaConfig, *, tail: bool = True) -> Dataflow:
    source = CoPartitionedSource(kafka, MARKET_TOPICS, tail=tail)
    config = ArbitrageConfig(instruments=all_instruments())
    return build_arbitrage_flow(source, KafkaEventSink(kafka), config)


def build_predict_kafka_flow(kafka: KafkaConfig, *, tail: bool = True) -> Dataflow:
    source = CoPartitionedSource(kafka, MARKET_TOPICS, tail=tail)
    return build_predict_flow(source, KafkaEventSink(kafka), PredictorConfig())


FLOWS = ("quote", "arbitrage", "predict", "surveillance")


def build_flow(
    name: str, config: FlowSettings, *, tail: bool = True, halt: Halt | None = None
) -> Dataflow:
    """The named flow on the configured Kafka; `tail=False` stops at the end of the input.
    `halt`: the run's signal of a known condition that stops it (`flows.halt`)."""
    kafka = config.kafka
    if name == "quote":
        return build_quote_kafka_flow(kafka, quote_options(config), tail=tail,
                                      commands=config.commands,
                                      lockstep=getattr(config.quote, "lockstep", False),
                                      halt=halt)
    if name == "arbitrage":
        return build_arbitrage_kafka_flow(kafka, tail=tail)
    if name == "predict":
        return build_predict_kafka_flow(kafka, tail=tail)
    if name == "surveillance":
        return build_surveillance_kafka_flow(kafka, config.surveillance, tail=tail)
    raise ValueError(f"unknown flow {name!r}; choose from {', '.join(FLOWS)}")


def run_flow(
    name: str,
    config: FlowSettings,
    *,
    workers: int = 1,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    tail: bool = True,
) -> None:
    """Run the named flow until it ends (never, with `tail`); blocks.

    `process_id` and `addresses` make this process one of a Bytewax cluster: every process
    gets the same addresses (one `host:port` per process) and its own index. Snapshots are
    taken every `config.recovery.snapshot_interval_s` when `config.recovery.directory` is set.

    Raises `FlowHalted` when the flow stopped itself on a known condition (a lockstep
    replay's marks for another market), after it has ended cleanly.
    """
    halt = Halt.new(name)
    run_dataflow(
        build_flow(name, config, tail=tail, halt=halt),
        config.recovery,
        workers=workers, process_id=process_id, addresses=addresses,
        per_flow_directory=False,
    )
    if halt.reason is not None:
        raise FlowHalted(halt.reason)
