"""Which topic and key each event type goes to.

Keys decide partitions, so they decide what stays in order:
- market data, intents, signals and predictions: `venue:symbol` (the event's `key`), so
  one instrument is one ordered stream;
- order events, fills, position samples and risk events: the account, so a fill and the
  position it changes are read in the order they happened;
- control commands: `target:action`. `control` is compacted (latest record per key), and
  a key of the target alone would let a later `set_params` erase an earlier `pause`;
- dead letters: no key (one partition, in arrival order).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from connectors.kafka.topics import TOPICS, topic_name
from models.events import (
    ControlCommand,
    DeadLetter,
    Event,
    Fill,
    HeardThrough,
    OrderEvent,
    Position,
    RiskEvent,
)

KeyFunction = Callable[[Event], str | None]

# HeardThrough: a lockstep replay's mark, in order with the fills it follows.
_ACCOUNT_KEYED = (OrderEvent, Fill, Position, RiskEvent, HeardThrough)


def _control_key(command: ControlCommand) -> str:
    return f"{command.target}:{command.action}"


def _no_key(_event: Event) -> None:
    return None


def routes(prefix: str, account: str) -> dict[type, tuple[str, KeyFunction]]:
    """Event type → (full topic name, key function) for one deployment."""
    table: dict[type, tuple[str, KeyFunction]] = {}
    for spec in TOPICS:
        topic = topic_name(prefix, spec.name)
        for event_type in spec.event_types:
            table[event_type] = (topic, _key_function(event_type, account))
    return table


def _key_function(event_type: type, account: str) -> KeyFunction:
    if event_type in _ACCOUNT_KEYED:
        return lambda _event: account
    if event_type is ControlCommand:
        return _control_key
    if event_type is DeadLetter:
        return _no_key
    return attrgetter("key")
