"""What earlier runs of an executor handled, read back from its hash-chained audit trail.

The executor appends an `intent` record before it acts on an intent and a `fill` record
(`news: true`) before it applies an execution to its ledgers, and the file is written
before anything reaches Kafka. So the trail is the durable memory a restarted executor
needs: the intent ids it must not act on again, the fills already in its positions, the
orders its last run left open (their last `order_event` was not terminal), and the nonces of
the signed commands it acted on (a `control` record precedes acting on each), so a command
captured and sent again after a restart is refused as a replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from models.audit import AuditRecord
from models.events import Fill, OrderEvent

TERMINAL_KINDS = frozenset({"fill", "cancel", "reject"})


@dataclass(slots=True)
class PastRun:
    intent_ids: list[str] = field(default_factory=list)  # in the order they were handled
    fills: list[Fill] = field(default_factory=list)  # applied to the ledgers, in order
    open_orders: dict[str, OrderEvent] = field(default_factory=dict)  # cid → last event
    # (nonce, ts) of the signed commands acted on: a replay after a restart is still refused.
    command_nonces: list[tuple[str, int]] = field(default_factory=list)


def past_run(records: Iterable[AuditRecord], actor: str) -> PastRun:
    """Fold `actor`'s records (oldest first) into what a restart must remember."""
    past = PastRun()
    for record in records:
        if record.actor != actor:
            continue
        action, payload = record.action, record.payload
        if action == "intent":
            past.intent_ids.append(payload["intent_id"])
        elif action == "fill" and payload.get("news"):
            past.fills.append(msgspec.convert(payload["fill"], Fill, strict=False))
        elif action == "control" and payload.get("nonce") is not None:
            past.command_nonces.append((payload["nonce"], payload["ts"]))
        elif action == "order_event":
            event = msgspec.convert(payload["event"], OrderEvent, strict=False)
            if event.kind in TERMINAL_KINDS:
                past.open_orders.pop(event.client_order_id, None)
            else:
                past.open_orders[event.client_order_id] = event
    return past
