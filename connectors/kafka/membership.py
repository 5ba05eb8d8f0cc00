"""A process's consumer group: one per deployment and account, with static membership.

A group shared by deployments with different topic prefixes (staging and prod, every test)
rebalances each of them whenever one joins or leaves. So a group id is, unless configured,
the process's transactional id, `<role>.<prefix>.<account>` (`transactions.transactional_id`):
one group per deployment and account, and the ACLs' group prefix `<role>` already covers it.

The member is static (KIP-345): its `group.instance.id` is that same id, stable across
restarts. A member that closes or is killed stays in the group until its session ends, and
one that joins with its instance id takes its place at once, with its partitions and without
a rebalance: a restarted executor reads again where its predecessor stopped, without waiting
out its session. Two live processes with one id fence each other, as their transactional
producers already do: the newer one takes the partitions and the older one's next poll
raises `KafkaFenced` (librdkafka's fatal error), never a silent split of the partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition

from connectors.kafka.config import KafkaConfig, connect_admin
from connectors.kafka.topics import topic_name
from connectors.kafka.transactions import transactional_id

# The restart window. A static member that stops heartbeating (killed, or stopped: it sends
# no LeaveGroup) keeps its place this long, and a restart that joins with its instance id
# within it takes the place at once, without a rebalance. Past it the member is removed and
# the restart joins a group that rebalances. Only this account's executor ever joins the
# group, so a long session delays no one else; 45 s (Kafka's default) covers a process or
# pod restart on a loaded machine, where the broker's minimum (6 s) did not.
SESSION_TIMEOUT_MS = 45_000


@dataclass(frozen=True, slots=True)
class Membership:
    group_id: str
    instance_id: str  # group.instance.id, = the transactional id

    def consumer_settings(self) -> dict[str, str | int]:
        return {"group.instance.id": self.instance_id, "session.timeout.ms": SESSION_TIMEOUT_MS}


def membership(role: str, config: KafkaConfig, group: str | None = None) -> Membership:
    """`role`'s membership in deployment `config`; `group`, when configured, is the group id
    as given (a deployment upgraded from one group per role keeps its committed offsets)."""
    instance = transactional_id(role, config)
    return Membership(group_id=group or instance, instance_id=instance)


def carry_offsets(
    config: KafkaConfig, source: str, target: str, topics: Iterable[str], timeout_s: float = 30.0
) -> list[TopicPartition]:
    """Copy `source`'s committed offsets of `topics` (base names) to group `target` when
    `target` has none for them yet: the upgrade from a group shared by deployments to one per
    deployment, once, before `target` is joined. The offsets copied ([] when none)."""
    names = {topic_name(config.prefix, t) for t in topics}
    admin = connect_admin(config)

    def committed(group: str) -> list[TopicPartition]:
        future = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], require_stable=True,
            request_timeout=timeout_s)[group]
        return [p for p in future.result().topic_partitions
                if p.topic in names and p.offset >= 0]

    if committed(target):
        return []
    try:
        offsets = committed(source)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
            raise
        offsets = []  # ACLs narrowed to the new names: there is no old group to read
    if offsets:
        future = admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(target, offsets)], request_timeout=timeout_s)[target]
        future.result()
    return offsets
