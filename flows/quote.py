"""The quote flow: market events in, per-instrument trading state, events out.

Wiring only. Input items are chunks (lists) of market events in stream order; each
instrument's state (`session`: in the Kafka deployment the `QuoteSession`, in the embedded
default and backtests the `PaperTrader` that adds the executor and the paper venue on the
same clocks) turns them into intents, order events, fills and position samples
(`flows.operators.per_key_state`). Dead letters skip the state and go straight out.

Operators' commands, when given a source of them (the `control` topic), go through one
`models.flow_control.CommandGate` (one key, so one worker sees them all in topic order): it
verifies, applies and acknowledges each, and its resulting state reaches every instrument's
session as an `InstrumentControl` merged into that instrument's input. Where it falls
between two market events depends on when the inputs are read, as for fills and
predictions; the session counts the states applied into its intent ids, so a replay after a
crash reuses an id only for the same content. The gate's state (control state and the
nonces seen while fresh) is in the snapshots with the sessions'. Undecodable commands are
dropped here: the executor, which reads the same topic, dead-letters them.

Run it on in-memory connectors (`connectors.memory`) or on Kafka with the same code:
`python -m bytewax.run "flows.quote:..."` takes any function returning the Dataflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.operators import DEAD_LETTER_KEY, KeyedState, instrument_key, per_key_state
from models.events import ControlAck, DeadLetter, Event
from models.flow_control import InstrumentControl

__all__ = ["Session", "build_quote_flow", "instrument_key"]

_log = logging.getLogger(__name__)


class Session(Protocol):
    def on_event(self, event: Any) -> list[Event]: ...

    def close(self) -> list[Event]: ...


def build_quote_flow(
    sources: Source | Mapping[str, Source],
    sink: Sink,
    new_session: Callable[[str], Session],
    flow_id: str = "quote",
    *,
    commands: Source | None = None,
    new_gate: Callable[[], KeyedState] | None = None,
) -> Dataflow:
    """`sources` is one source of market events, or several by name (market data, our own
    fills, predictions) merged into one stream. With `commands` (chunks of `ControlCommand`s)
    `new_gate()` makes the one state that answers them (its acks go out with the events)."""
    flow = Dataflow(flow_id)
    if isinstance(sources, Mapping):
        inputs = [op.input(name, flow, source) for name, source in sources.items()]
    else:
        inputs = [op.input("market", flow, sources)]
    acks = None
    if commands is not None:
        if new_gate is None:
            raise ValueError("commands need new_gate, the state that answers them")
        answers = per_key_state(
            "command_gate", op.input("commands", flow, commands),
            lambda _first: new_gate(), key_of=_gate_key, keep_dead_letters=False,
        )
        branched = op.branch("to_instruments", answers, _is_instrument_control)
        acks = op.inspect("log_refusals", branched.falses, _log_refusal)
        inputs.append(op.map("as_chunks", branched.trues, _chunk))
    chunks = op.merge("inputs", *inputs) if len(inputs) > 1 else inputs[0]
    events = per_key_state(
        "instrument_state", chunks, lambda first: new_session(instrument_key(first))
    )
    if acks is not None:
        events = op.merge("with_acks", events, acks)
    op.output("events", events, sink)
    return flow


def _gate_key(event: Event) -> str:
    return DEAD_LETTER_KEY if type(event) is DeadLetter else "commands"


def _log_refusal(_step: str, ack: ControlAck) -> None:
    if ack.status != "applied":
        _log.warning("command %s (%s on %r, claimed by %r) refused: %s", ack.command_id,
                     ack.action, ack.target, ack.issued_by, ack.reason)


def _is_instrument_control(item: object) -> bool:
    return type(item) is InstrumentControl


def _chunk(item: InstrumentControl) -> list[InstrumentControl]:
    return [item]
