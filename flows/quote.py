"""The quote flow: market events in, per-instrument trading state, events out.

Wiring only. Input items are chunks (lists) of market events in stream order; they are
split per instrument (`venue:symbol`) so one key's events stay in order on one worker,
then each instrument's state (`session` — quote engine, book, and in the embedded default
and backtests the paper venue on the same clock) turns them into intents, order events,
fills and position samples. Dead letters skip the state and go straight out.

Run it on in-memory connectors (`connectors.memory`) or on Kafka with the same code:
`python -m bytewax.run "flows.quote:..."` takes any function returning the Dataflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from models.events import DeadLetter, Event

DEAD_LETTER_KEY = "dead_letter"


class Session(Protocol):
    def on_event(self, event: Any) -> list[Event]: ...

    def close(self) -> list[Event]: ...


def instrument_key(event: Event) -> str:
    """`venue:symbol` for market data, fills, order events and predictions alike.

    Fills and order events are keyed by account on Kafka; the quote state is per instrument.
    """
    if type(event) is DeadLetter:
        return DEAD_LETTER_KEY
    return f"{event.venue}:{event.symbol}"


def split_by_instrument(chunk: list) -> Iterable[tuple[str, list]]:
    """One (key, events) pair per instrument in the chunk, preserving each one's order."""
    groups: dict[str, list] = {}
    for event in chunk:
        key = instrument_key(event)
        group = groups.get(key)
        if group is None:
            groups[key] = [event]
        else:
            group.append(event)
    return groups.items()


class _InstrumentLogic(StatefulLogic):
    def __init__(self, new_session: Callable[[str], Session], session: Session | None):
        self._new_session = new_session
        self._session = session

    # Outputs leave as one list per chunk: Bytewax's cost is per item, not per event.
    def on_item(self, value: list) -> tuple[list[list[Event]], bool]:
        first = value[0]
        if isinstance(first, DeadLetter):
            return [value], StatefulLogic.DISCARD
        if self._session is None:
            self._session = self._new_session(instrument_key(first))
        on_event = self._session.on_event
        out: list[Event] = []
        for event in value:
            out.extend(on_event(event))
        return ([out] if out else []), StatefulLogic.RETAIN

    def on_eof(self) -> tuple[list[list[Event]], bool]:
        if self._session is None:
            return [], StatefulLogic.DISCARD
        return [self._session.close()], StatefulLogic.RETAIN

    def snapshot(self) -> Session | None:
        return self._session


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
    per_instrument = op.flat_map("by_instrument", chunks, split_by_instrument)
    traded = op.stateful(
        "instrument_state", per_instrument, lambda resume: _InstrumentLogic(new_session, resume)
    )
    events = op.flat_map("unkey", traded, _unkey)
    op.output("events", events, sink)
    return flow


def _unkey(item: tuple[str, list[Event]]) -> list[Event]:
    return item[1]
