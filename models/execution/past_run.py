"""What earlier runs of an executor handled, read back from its hash-chained audit trail.

The executor appends an `intent` record before it acts on an intent and a `fill` record
(`news: true`) before it applies an execution to its ledgers, and the file is written
before anything reaches Kafka. So the trail is the durable memory a restarted executor
needs: the intent ids it must not act on again, the fills already in its positions, the
orders its last run left open (their last `order_event` was not terminal), and the nonces of
the signed commands it acted on (a `control` record precedes acting on each), so a command
captured and sent again after a restart is refused as a replay.

And the last intent each strategy's quotes on each instrument were taken from: a kill can
land after its `intent` record and before its orders were sent, and a restart re-applies it
(`Executor.resume`): each intent is a full desired state, so re-applying one that was acted
on in full changes nothing. Taken means not dropped: a dropped intent's `intent` record is
followed at once by its `intent_dropped`; one a kill cut off from that record may have been
taken or was being dropped, and what can be checked again (its age when recorded, its
instrument, a time older than the last taken) is checked again, here and by the executor.

And the trading states the risk engine was in (`risk_event` state changes: a kill, a pause,
a breached limit): a restart must not trade again in a scope an operator halted, nor re-apply
an intent there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from models.audit import AuditRecord
from models.events import Fill, OrderEvent, OrderIntent
from models.risk.reasons import CMD_RESUME
from models.risk.state import TradingState, TradingStates, scope_of

TERMINAL_KINDS = frozenset({"fill", "cancel", "reject"})


@dataclass(frozen=True, slots=True)
class TakenIntent:
    intent: OrderIntent
    recorded_ts: int  # the time of its `intent` record: when the executor took it
    resumes: int = 0  # the generation of its last re-application by a restart (0: none)


@dataclass(slots=True)
class PastRun:
    intent_ids: list[str] = field(default_factory=list)  # in the order they were handled
    fills: list[Fill] = field(default_factory=list)  # applied to the ledgers, in order
    open_orders: dict[str, OrderEvent] = field(default_factory=dict)  # cid → last event
    # (nonce, ts) of the signed commands acted on: a replay after a restart is still refused.
    command_nonces: list[tuple[str, int]] = field(default_factory=list)
    # (strategy, instrument key) → the last intent taken for it: the desired state it left.
    last_intents: dict[tuple[str, str], TakenIntent] = field(default_factory=dict)
    # scope → its state, for the scopes that were not ACTIVE when the last run ended
    trading_states: dict[str, TradingState] = field(default_factory=dict)


def past_run(records: Iterable[AuditRecord], actor: str) -> PastRun:
    """Fold `actor`'s records (oldest first) into what a restart must remember."""
    past = PastRun()
    recorded: TakenIntent | None = None  # the last `intent` record, until we know it was taken
    states = TradingStates()
    for record in records:
        if record.actor != actor:
            continue
        action, payload = record.action, record.payload
        if recorded is not None:
            if action != "intent_dropped" or payload["intent_id"] != recorded.intent.intent_id:
                _taken(past.last_intents, recorded)
            recorded = None
        if action == "intent":
            past.intent_ids.append(payload["intent_id"])
            recorded = TakenIntent(msgspec.convert(payload, OrderIntent, strict=False), record.ts)
        elif action == "intent_resumed":
            intent = msgspec.convert(payload["intent"], OrderIntent, strict=False)
            _resumed(past.last_intents, intent, payload["generation"])
        elif action == "fill" and payload.get("news"):
            past.fills.append(msgspec.convert(payload["fill"], Fill, strict=False))
        elif action == "control" and payload.get("nonce") is not None:
            past.command_nonces.append((payload["nonce"], payload["ts"]))
        elif action == "risk_event" and payload.get("kind") == "state_change":
            # Only a resume lowers a state, and it clears the narrower scopes too; the state
            # an escalation reports is the scope's effective one, which is what it trades at.
            scope = scope_of(payload.get("venue"), payload.get("symbol"))
            if payload["reason_code"] == CMD_RESUME:
                states.resume(scope)
            else:
                states.escalate(scope, TradingState(payload["state"]))
        elif action == "order_event":
            event = msgspec.convert(payload["event"], OrderEvent, strict=False)
            if event.kind in TERMINAL_KINDS:
                past.open_orders.pop(event.client_order_id, None)
            else:
                past.open_orders[event.client_order_id] = event
    if recorded is not None:  # the trail ends with it: a kill came right after
        _taken(past.last_intents, recorded)
    past.trading_states = states.scopes()
    return past


def _taken(last: dict[tuple[str, str], TakenIntent], taken: TakenIntent) -> None:
    intent = taken.intent
    key = (intent.strategy, intent.key)
    current = last.get(key)
    # Never an older one: the executor takes no intent older than the last it took (the
    # record of one read again, or being dropped as OUT_OF_ORDER when a kill came, is not).
    if current is None or (intent.ts >= current.intent.ts
                           and intent.intent_id != current.intent.intent_id):
        last[key] = taken


def _resumed(last: dict[tuple[str, str], TakenIntent], intent: OrderIntent,
             generation: int) -> None:
    taken = last.get((intent.strategy, intent.key))
    if taken is not None and taken.intent.intent_id == intent.intent_id:
        last[intent.strategy, intent.key] = TakenIntent(
            taken.intent, taken.recorded_ts, max(taken.resumes, generation))
