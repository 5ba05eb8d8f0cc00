"""quoteflow's topics: names, partitions, retention, the event types each carries.

Partition counts are part of the contract, not tuning: a key's partition is its hash modulo
the count, so changing the count of a live topic moves instruments between partitions and
breaks per-key order across the change. `ensure_topics` therefore creates what is missing
and reports, never alters, a topic that differs from its spec.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from connectors.kafka.config import validate_prefix
from models.events import (
    BBO,
    ArbSignal,
    BookDelta,
    BookSnapshot,
    ControlAck,
    ControlCommand,
    DeadLetter,
    Fill,
    HeardThrough,
    OrderEvent,
    OrderIntent,
    Position,
    Prediction,
    QuotedThrough,
    RiskEvent,
    SurveillanceAlert,
    Trade,
)

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int  # -1 keeps forever
    event_types: tuple[type, ...] = ()
    compact: bool = False
    purpose: str = field(default="", compare=False)

    def configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": "compact" if self.compact else "delete",
            "retention.ms": str(self.retention_ms),
        }


# Market data gets the most partitions: it is the volume, and Bytewax reads one source
# partition per Kafka partition. Everything per account or global is small and ordered.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("md.book", 6, _DAY_MS, (BookSnapshot, BookDelta), purpose="L2 snapshots and deltas"),
    TopicSpec("md.bbo", 6, _DAY_MS, (BBO,), purpose="Best bid and offer"),
    TopicSpec("md.trades", 6, _DAY_MS, (Trade,), purpose="Public trades"),
    TopicSpec("signals.arb", 3, _DAY_MS, (ArbSignal,), purpose="Arbitrage signals"),
    TopicSpec("signals.pred", 3, _DAY_MS, (Prediction,), purpose="Online predictions"),
    TopicSpec(
        "orders.intents", 3, 7 * _DAY_MS, (OrderIntent, QuotedThrough),
        purpose="Desired quotes per instrument",
    ),
    TopicSpec(
        "orders.events", 3, 30 * _DAY_MS, (OrderEvent, Fill, Position, HeardThrough),
        purpose="Acks, fills, cancels, rejects and position samples, per account",
    ),
    TopicSpec("risk.events", 1, 30 * _DAY_MS, (RiskEvent,), purpose="Risk decisions"),
    TopicSpec(
        "surveillance.alerts", 1, 90 * _DAY_MS, (SurveillanceAlert,),
        purpose="Market-abuse alerts on our own orders and fills (docs/surveillance.md)",
    ),
    # Compacted: a restarted process reads the latest command per key to learn the state.
    TopicSpec(
        "control", 1, -1, (ControlCommand,), compact=True, purpose="Operator commands",
    ),
    # Keyed like `control` (process:target:action) and compacted alike, so the answer to the
    # latest command per target and action is always kept.
    TopicSpec(
        "control.acks", 1, -1, (ControlAck,), compact=True,
        purpose="Each command's acknowledgement by the process that applied or refused it",
    ),
    TopicSpec(
        "audit", 1, 90 * _DAY_MS,
        purpose="Audit trail: hash-chained models.audit.AuditRecord (not an Event)",
    ),
    TopicSpec(
        "deadletter", 1, 14 * _DAY_MS, (DeadLetter,),
        purpose="Input that could not be read, with the reason",
    ),
)

SPECS: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}


def topic_name(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class MissingTopicsError(RuntimeError):
    """Topics a process needs do not exist (auto-creation is off by design)."""


def require_topics(admin: AdminClient, names: Iterable[str], timeout_s: float) -> None:
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = sorted(set(names) - existing.keys())
    if missing:
        raise MissingTopicsError(
            f"Kafka lacks topics {missing}: create them with `quoteflow topics` "
            "(connectors.kafka.ensure_topics) and the same prefix"
        )


class TopicMismatchError(RuntimeError):
    """Existing topics differ from their specs; the message lists every difference."""


@dataclass(slots=True)
class TopicReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def ensure_topics(
    admin: AdminClient,
    prefix: str = "",
    specs: tuple[TopicSpec, ...] = TOPICS,
    *,
    strict: bool = True,
    timeout_s: float = 30.0,
) -> TopicReport:
    """Create missing topics; compare existing ones with their specs.

    With `strict`, any difference raises `TopicMismatchError` after creation is done.
    """
    validate_prefix(prefix)
    wanted = {topic_name(prefix, spec.name): spec for spec in specs}
    listed = admin.list_topics(timeout=timeout_s).topics
    report = TopicReport()
    missing = [name for name in wanted if name not in listed]
    if missing:
        new = [
            NewTopic(name, wanted[name].partitions, 1, config=wanted[name].configs())
            for name in missing
        ]
        for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
            try:
                future.result()
                report.created.append(name)
            except KafkaException as exc:
                # Created by someone else since our listing (or not yet in its metadata).
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    report.existing = [name for name in wanted if name not in report.created]
    # Also waits for the created ones, so every topic is usable when this returns.
    counts = _partition_counts(admin, list(wanted), timeout_s)
    for name in report.existing:
        actual = counts[name]
        if actual != wanted[name].partitions:
            report.mismatches.append(
                f"{name}: {actual} partitions, spec says {wanted[name].partitions}"
            )
    report.mismatches.extend(
        _config_mismatches(admin, {n: wanted[n] for n in report.existing}, timeout_s)
    )
    if strict and report.mismatches:
        raise TopicMismatchError(
            "Kafka topics differ from quoteflow's specs (fix them by hand or use a new "
            "prefix; partitions are never changed automatically):\n  "
            + "\n  ".join(report.mismatches)
        )
    return report


def _partition_counts(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, int]:
    # A topic created a moment ago is missing from the broker's metadata for a few
    # milliseconds: ask again until every one shows up.
    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(timeout=timeout_s).topics
        unseen = [name for name in names if name not in listed]
        if not unseen:
            return {name: len(listed[name].partitions) for name in names}
        if time.monotonic() > deadline:
            raise MissingTopicsError(f"topics {unseen} not visible after {timeout_s:g} s")
        time.sleep(0.02)


def _config_mismatches(
    admin: AdminClient, specs: dict[str, TopicSpec], timeout_s: float
) -> list[str]:
    if not specs:
        return []
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in specs]
    mismatches = []
    for resource, future in admin.describe_configs(resources, request_timeout=timeout_s).items():
        entries = future.result()
        for key, expected in specs[resource.name].configs().items():
            actual = entries[key].value
            if actual != expected:
                mismatches.append(f"{resource.name}: {key}={actual}, spec says {expected}")
    return mismatches
