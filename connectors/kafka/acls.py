"""Who may do what on the bus: one principal per process, its ACLs derived from one table.

`PRINCIPALS` is the only place that says which process reads and writes which topic; the
dev stack (`quoteflow bus principals`), the tests and any other deployment (Kubernetes)
derive the broker's ACLs from it with `acl_bindings`. The broker denies what no ACL allows
(`allow.everyone.if.no.acl.found=false`), so a process that is not listed can do nothing,
and a listed one cannot write a topic it is not listed for: only the API writes `control`,
only the quote flow `orders.intents`, only the executor `orders.events`.

Every principal may DESCRIBE every topic of its deployment (names and partition counts,
never data): producers check at start-up that all routed topics exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from connectors.kafka.topics import SPECS, TOPICS, topic_name

MARKET = ("md.book", "md.bbo", "md.trades")
# Flows read with assigned partitions and keep offsets in their snapshots; librdkafka still
# wants a group id (ours and Bytewax's), which they never commit to.
FLOW_GROUPS = ("quoteflow-unused", "BYTEWAX_IGNORED")
_SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, slots=True)
class BusPrincipal:
    """A SCRAM user: the topics (base names) it reads and writes, the consumer-group name
    prefixes it may join."""

    name: str
    purpose: str
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # Transactional-id prefixes (`connectors.kafka.transactions`): it publishes in transactions.
    transactions: tuple[str, ...] = ()


PRINCIPALS: tuple[BusPrincipal, ...] = (
    BusPrincipal("ingest", "quoteflow ingest: market data onto md.*",
                 writes=(*MARKET, "deadletter"), reads=MARKET, groups=("ingest",)),
    BusPrincipal("quote", "the quote flow: intents from market data, fills, predictions and "
                 "signed commands (each acknowledged)",
                 writes=("orders.intents", "control.acks", "deadletter"),
                 reads=(*MARKET, "orders.events", "signals.pred", "control"),
                 groups=FLOW_GROUPS),
    BusPrincipal("arbitrage", "the arbitrage flow", writes=("signals.arb", "deadletter"),
                 reads=MARKET, groups=FLOW_GROUPS),
    BusPrincipal("predict", "the prediction flow", writes=("signals.pred", "deadletter"),
                 reads=MARKET, groups=FLOW_GROUPS),
    BusPrincipal("executor", "quoteflow execute: acts on intents and signed commands",
                 writes=("orders.events", "risk.events", "audit", "deadletter"),
                 # audit: its own chain's anchor, checked at every start
                 reads=("orders.intents", "control", "audit", *MARKET), groups=("executor",),
                 transactions=("executor",)),
    BusPrincipal("surveillance", "the surveillance flow: alerts from our orders and fills",
                 writes=("surveillance.alerts", "deadletter"), reads=("orders.events",),
                 groups=FLOW_GROUPS),
    BusPrincipal("persist", "quoteflow persist: every topic into the database",
                 writes=("deadletter",), reads=tuple(spec.name for spec in TOPICS),
                 groups=FLOW_GROUPS),
    BusPrincipal("api", "the control API: signed operator commands and its audit trail",
                 writes=("control", "audit")),
)
BY_NAME: dict[str, BusPrincipal] = {p.name: p for p in PRINCIPALS}


def _check(principals: Iterable[BusPrincipal]) -> None:
    for principal in principals:
        unknown = sorted(set(principal.writes + principal.reads) - SPECS.keys())
        if unknown:
            raise ValueError(f"principal {principal.name}: unknown topics {unknown}")


_check(PRINCIPALS)


def acl_bindings(principal: BusPrincipal, prefix: str = "") -> list[AclBinding]:
    """The ALLOW bindings that give `principal` exactly its rights in deployment `prefix`."""
    user = f"User:{principal.name}"

    def allow(kind: ResourceType, name: str, operation: AclOperation,
              pattern: ResourcePatternType = ResourcePatternType.LITERAL) -> AclBinding:
        return AclBinding(kind, name, pattern, user, "*", operation, AclPermissionType.ALLOW)

    bindings = [allow(ResourceType.TOPIC, topic_name(prefix, spec.name), AclOperation.DESCRIBE)
                for spec in TOPICS]
    bindings += [allow(ResourceType.TOPIC, topic_name(prefix, name), AclOperation.WRITE)
                 for name in principal.writes]
    bindings += [allow(ResourceType.TOPIC, topic_name(prefix, name), AclOperation.READ)
                 for name in principal.reads]
    bindings += [allow(ResourceType.GROUP, group, AclOperation.READ, ResourcePatternType.PREFIXED)
                 for group in principal.groups]
    bindings += [allow(ResourceType.TRANSACTIONAL_ID, name, AclOperation.WRITE,
                       ResourcePatternType.PREFIXED)
                 for name in principal.transactions]
    return bindings


def apply_acls(
    admin: AdminClient, prefix: str = "",
    principals: Iterable[BusPrincipal] = PRINCIPALS, timeout_s: float = 30.0,
) -> int:
    """Create every principal's bindings (creating an existing one is a no-op); the count."""
    bindings = [b for p in principals for b in acl_bindings(p, prefix)]
    for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
        future.result()
    return len(bindings)


def set_passwords(
    admin: AdminClient, passwords: Mapping[str, str], timeout_s: float = 30.0
) -> None:
    """Create or replace the SCRAM-SHA-512 credential of each user."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, _SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(user, info, password.encode())
               for user, password in passwords.items()]
    for future in admin.alter_user_scram_credentials(
        upserts, request_timeout=timeout_s
    ).values():
        future.result()


def new_password() -> str:
    return secrets.token_hex(24)
