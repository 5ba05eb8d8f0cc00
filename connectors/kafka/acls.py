"""Who may do what on the bus: one principal per process, its ACLs derived from one table.

`PRINCIPALS` is the only place that says which process reads and writes which topic; the
dev stack (`quoteflow bus principals`), the tests and any other deployment (Kubernetes)
derive the broker's ACLs from it with `acl_bindings`. The broker denies what no ACL allows
(`allow.everyone.if.no.acl.found=false`), so a process that is not listed can do nothing,
and a listed one cannot write a topic it is not listed for: only the API writes `control`,
only the quote flow `orders.intents`, only the executor `orders.events`.

Every principal may DESCRIBE every topic of its deployment (names and partition counts,
never data): producers check at start-up that all routed topics exist.

Principals are per deployment: process `executor` of the deployment with topic prefix `prod`
logs in as `prod.executor` (`user_name`, composed as `topic_name` composes topics; the empty
prefix keeps the bare `executor`), granted only `prod.*` topics and only the group and
transactional ids of its own deployment, `executor.prod.` (`role_scope`). So deployments
sharing a broker (staging and prod) reach neither each other's topics nor each other's
executor group or transactions, and setting one's passwords never replaces another's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from connectors.kafka.topics import SPECS, TOPICS, topic_name
from connectors.kafka.transactions import role_scope

MARKET = ("md.book", "md.bbo", "md.trades")
# Flows read with assigned partitions and keep offsets in their snapshots; librdkafka still
# wants a group id (ours and Bytewax's), which they never commit to. These names stay shared
# by deployments: a group's offsets are per topic, and a principal commits or fetches
# offsets only of topics it may read or describe (its own deployment's), so a shared group
# that is never joined carries nothing between deployments (docs/security.md).
FLOW_GROUPS = ("quoteflow-unused", "BYTEWAX_IGNORED")
_SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, slots=True)
class BusPrincipal:
    """A process on the bus: the topics (base names) it reads and writes, the consumer-group
    name prefixes it may join (shared by deployments, see `FLOW_GROUPS`), the roles whose
    deployment-scoped group ids it may join (`role_scope`)."""

    name: str
    purpose: str
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # Roles whose groups `<role>.<prefix>.…` it joins (the executor's, `membership`).
    scoped_groups: tuple[str, ...] = ()
    # Roles whose transactional ids `<role>.<prefix>.…` it uses (`transactional_id`).
    transactions: tuple[str, ...] = ()


PRINCIPALS: tuple[BusPrincipal, ...] = (
    BusPrincipal("ingest", "quoteflow ingest: market data onto md.*",
                 writes=(*MARKET, "deadletter"), reads=MARKET, scoped_groups=("ingest",)),
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
                 reads=("orders.intents", "control", "audit", *MARKET),
                 scoped_groups=("executor",), transactions=("executor",)),
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


def user_name(process: str, prefix: str = "") -> str:
    """The SCRAM user process `process` logs in as in the deployment with topic `prefix`:
    `<prefix>.<process>`, bare for the empty prefix (the dev stack's, Kubernetes' base).
    Process names hold no dot, so two deployments' user names never coincide."""
    return topic_name(prefix, process)


def nesting_deployments(users: Iterable[str], prefix: str) -> list[str]:
    """The topic prefixes of the other deployments among `users` (a broker's SCRAM users)
    whose ids cannot be told from deployment `prefix`'s: grants are by prefix, so
    `executor.eu.` would cover `executor.eu.paper.<account>` (prefixes `eu` and `eu.paper`),
    and `executor.-.` is both the empty prefix's and the prefix `-`'s."""
    def scope(deployment: str) -> str:
        return deployment or "-"

    mine = scope(prefix)
    others = {user.rpartition(".")[0] for user in users if user.rpartition(".")[2] in BY_NAME}
    return sorted(other for other in others - {prefix}
                  if scope(other) == mine or scope(other).startswith(f"{mine}.")
                  or mine.startswith(f"{scope(other)}."))


def scram_users(admin: AdminClient, timeout_s: float = 30.0) -> list[str]:
    """Every user with a SCRAM credential on the broker."""
    return list(admin.describe_user_scram_credentials(request_timeout=timeout_s).result())


def acl_bindings(principal: BusPrincipal, prefix: str = "") -> list[AclBinding]:
    """The ALLOW bindings that give `principal`'s user in deployment `prefix` exactly its
    rights there."""
    user = f"User:{user_name(principal.name, prefix)}"

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
    bindings += [allow(ResourceType.GROUP, role_scope(role, prefix), AclOperation.READ,
                       ResourcePatternType.PREFIXED)
                 for role in principal.scoped_groups]
    bindings += [allow(ResourceType.TRANSACTIONAL_ID, role_scope(role, prefix),
                       AclOperation.WRITE, ResourcePatternType.PREFIXED)
                 for role in principal.transactions]
    return bindings


def apply_acls(
    admin: AdminClient, prefix: str = "",
    principals: Iterable[BusPrincipal] = PRINCIPALS, timeout_s: float = 30.0,
) -> int:
    """Give every principal's user in deployment `prefix` exactly its bindings: create them
    (creating an existing one is a no-op), then delete any other binding the user has (a
    grant an older version gave, or one made by hand); the count created."""
    principals = list(principals)
    bindings = [b for p in principals for b in acl_bindings(p, prefix)]
    for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
        future.result()
    wanted = {_fields(binding) for binding in bindings}
    stale = [
        AclBindingFilter(*_fields(binding))
        for principal in principals
        for binding in _bindings_of(admin, user_name(principal.name, prefix), timeout_s)
        if _fields(binding) not in wanted
    ]
    if stale:
        for future in admin.delete_acls(stale, request_timeout=timeout_s).values():
            future.result()
    return len(bindings)


def _fields(binding: AclBinding) -> tuple:
    return (binding.restype, binding.name, binding.resource_pattern_type, binding.principal,
            binding.host, binding.operation, binding.permission_type)


def _bindings_of(admin: AdminClient, user: str, timeout_s: float) -> list[AclBinding]:
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{user}",
                             None, AclOperation.ANY, AclPermissionType.ANY)
    return list(admin.describe_acls(every, request_timeout=timeout_s).result())


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


def retire_users(admin: AdminClient, users: Iterable[str], timeout_s: float = 30.0) -> int:
    """Delete every ACL binding of each user and its SCRAM-SHA-512 credential (a user
    without one is skipped): the upgrade's last step, when nothing logs in as the shared
    bare user names any more. The number of bindings deleted."""
    users = list(users)
    filters = [AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{user}",
                                None, AclOperation.ANY, AclPermissionType.ANY) for user in users]
    deleted = sum(len(future.result()) for future in admin.delete_acls(
        filters, request_timeout=timeout_s).values()) if filters else 0
    known = set(scram_users(admin, timeout_s))
    deletions = [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
                 for user in users if user in known]
    if deletions:
        for future in admin.alter_user_scram_credentials(
            deletions, request_timeout=timeout_s
        ).values():
            future.result()
    return deleted


def new_password() -> str:
    return secrets.token_hex(24)
