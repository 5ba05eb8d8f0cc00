"""The executor's consumer group: one per deployment and account, a static member.

Real broker. Deployments with different topic prefixes on one broker each have a group of
their own, so one's join does not rebalance the other; a killed executor's restart takes its
place and partitions at once (the group never rebalances); a second executor of the same
deployment and account either stops at the audit file's lock before touching Kafka or, when
it joins, fences the running one, which stops with one line; an upgraded deployment's group
takes over the offsets of the group all deployments shared before.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from connectors.kafka import EventConsumer, EventProducer, KafkaConfig, connect_admin, topic_name
from connectors.kafka.acls import BY_NAME, acl_bindings
from connectors.kafka.membership import carry_offsets, membership
from connectors.kafka.topics import SPECS
from connectors.kafka.transactions import role_scope
from flows.execute_kafka import ORDER_TOPICS, ROLE, run_execute
from models.events import OrderIntent
from quoteflow.config import Config, ExecuteConfig
from tests.execute_runs import audit_records, paper_settings, wait_for, write_config
from tests.flow_runs import QUOTEFLOW
from tests.kafka_service import kafka_config, new_deployment, principal_config

pytestmark = pytest.mark.integration

REBALANCING = {"PREPARING_REBALANCING", "COMPLETING_REBALANCING"}


def _partitions(kafka: KafkaConfig) -> frozenset[tuple[str, int]]:
    """Every partition the executor's orders consumer reads in deployment `kafka`."""
    return frozenset((topic_name(kafka.prefix, t), p)
                     for t in ORDER_TOPICS for p in range(SPECS[t].partitions))


def _group(kafka: KafkaConfig, group: str) -> tuple[str, list[tuple[str, str | None, frozenset]]]:
    """The group's state and its members (member id, instance id, partitions assigned)."""
    admin = connect_admin(kafka)  # held until the answer: a collected client drops it
    described = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    return described.state.name, [
        (m.member_id, m.group_instance_id,
         frozenset((p.topic, p.partition) for p in m.assignment.topic_partitions))
        for m in described.members
    ]


class _GroupWatch:
    """Every distinct (state, member ids) the broker reports for a group, until stopped."""

    def __init__(self, kafka: KafkaConfig, group: str) -> None:
        self.seen: list[tuple[str, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(kafka, group), daemon=True)
        self._thread.start()

    def _run(self, kafka: KafkaConfig, group: str) -> None:
        admin = connect_admin(kafka)
        while not self._stop.is_set():
            described = admin.describe_consumer_groups(
                [group], request_timeout=10)[group].result()
            sample = (described.state.name, tuple(m.member_id for m in described.members))
            if not self.seen or self.seen[-1] != sample:
                self.seen.append(sample)
            time.sleep(0.02)

    def stop(self) -> list[tuple[str, tuple[str, ...]]]:
        self._stop.set()
        self._thread.join(10)
        return self.seen


def _holding(kafka: KafkaConfig, group: str):
    """A probe: the one member holding every partition of the deployment, once it does."""
    def probe():
        state, members = _group(kafka, group)
        if state == "STABLE" and len(members) == 1 and members[0][2] == _partitions(kafka):
            return members[0]
        return None
    return probe


def _intent(tag: str) -> OrderIntent:
    return OrderIntent(intent_id=f"{tag}-{uuid.uuid4().hex}", venue="binance",
                       symbol="BTC/USDT", ts=time.time_ns(), strategy="s", bids=[], asks=[])


def _send(kafka: KafkaConfig, intent: OrderIntent) -> OrderIntent:
    producer = EventProducer(kafka)
    producer.send(intent)
    producer.close()
    return intent


def _took(audit: Path, intent: OrderIntent):
    return lambda: any(r["action"] == "intent" and r["payload"]["intent_id"] == intent.intent_id
                       for r in audit_records(audit))


def _start(config: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([str(QUOTEFLOW), "execute", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)


def test_each_deployment_and_account_has_a_group_its_acls_grant():
    prod = KafkaConfig(prefix="prod", account="main")
    staging = KafkaConfig(prefix="staging", account="main")
    member = membership(ROLE, prod)
    assert member.group_id == member.instance_id == "executor.prod.main"
    assert membership(ROLE, staging).group_id == "executor.staging.main"
    assert membership(ROLE, KafkaConfig(prefix="prod", account="other")).group_id \
        == "executor.prod.other"
    # A configured group is kept as given (an upgrade keeps its offsets); the instance id
    # stays the transactional id.
    kept = membership("executor", prod, "executor")
    assert (kept.group_id, kept.instance_id) == ("executor", "executor.prod.main")
    assert member.consumer_settings()["group.instance.id"] == "executor.prod.main"
    # The deployment's executor principal may join the group (and the md.* groups under it)
    # and use the transactional id: its grants are the prefix of its own deployment's ids,
    # never the shared group `executor` nor another deployment's.
    bindings = acl_bindings(BY_NAME["executor"], "prod")
    groups = [b.name for b in bindings if b.restype == ResourceType.GROUP
              and b.operation == AclOperation.READ
              and b.resource_pattern_type == ResourcePatternType.PREFIXED]
    transactions = [b.name for b in bindings if b.restype == ResourceType.TRANSACTIONAL_ID]
    assert groups == transactions == ["executor.prod."]
    for name in (member.group_id, f"{member.group_id}.market.0123456789ab"):
        assert any(name.startswith(g) for g in groups), name
    for name in ("executor", membership(ROLE, staging).group_id):
        assert not any(name.startswith(g) for g in groups), name
    assert any(member.instance_id.startswith(t) for t in transactions)
    with pytest.raises(ValueError, match=r"execute\.group must not be empty"):
        ExecuteConfig(symbols=["BTC/USDT"], group=" ")


def test_two_deployments_on_one_broker_keep_out_of_each_others_group(kafka_bootstrap, tmp_path):
    """Before, both joined group `executor` with different subscriptions: the second one's
    join rebalanced the first, and the group held both."""
    deployments = [new_deployment(kafka_bootstrap) for _ in range(2)]
    groups = [membership(ROLE, kafka).group_id for kafka in deployments]
    assert groups[0] != groups[1]
    stops, runners = [], []
    try:
        first = None
        for n, kafka in enumerate(deployments):
            stop = threading.Event()
            settings = paper_settings(tmp_path / f"d{n}")
            runner = threading.Thread(target=run_execute, daemon=True,
                                      args=(Config(kafka=kafka, execute=settings),),
                                      kwargs={"stop": stop})
            runner.start()
            stops.append(stop)
            runners.append(runner)
            held = wait_for(_holding(kafka, groups[n]), f"deployment {n}'s executor")
            if n == 0:
                first = held
                watch = _GroupWatch(deployments[0], groups[0])
        # The second deployment's executor joined its own group: the first's kept its one
        # member, never rebalanced, and each member holds only its own deployment's partitions.
        seen = watch.stop()
        assert seen == [("STABLE", (first[0],))]
        assert _group(deployments[0], groups[0])[1] == [first]
        assert first[1] == membership(ROLE, deployments[0]).instance_id
    finally:
        for stop in stops:
            stop.set()
        for runner in runners:
            runner.join(30)
    assert not any(r.is_alive() for r in runners)


def test_a_killed_executor_restarted_takes_its_partitions_back_without_a_rebalance(
    kafka_bootstrap, tmp_path
):
    kafka = new_deployment(kafka_bootstrap)
    audit = tmp_path / "audit.jsonl"
    config = write_config(tmp_path / "quoteflow.toml", kafka, audit)
    log = tmp_path / "execute.log"
    group = membership(ROLE, kafka).group_id
    first = _start(config, log)
    try:
        killed = wait_for(_holding(kafka, group), "the executor's partitions")
        watch = _GroupWatch(kafka, group)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        # A static member outlives its process: the killed one still holds the partitions.
        assert _group(kafka, group) == ("STABLE", [killed])
        restarted = _start(config, log)
        try:
            intent = _send(kafka, _intent("after-kill"))
            wait_for(_took(audit, intent), "the restart to take the intent")
            seen = watch.stop()
        finally:
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(60) == 0, log.read_text()[-2000:]
    finally:
        first.kill()
        first.wait(30)
    # The restart took the killed member's place, its instance id and every partition, with
    # the group stable throughout: no rebalance, no wait for the killed one's session to end.
    states = [state for state, _ in seen]
    assert not REBALANCING & set(states), seen
    assert all(len(members) == 1 for _, members in seen), seen
    assert len({members for _, members in seen}) == 2  # the killed member, then the new one


def test_a_second_executor_stops_at_the_file_or_fences_the_first_never_shares(
    kafka_bootstrap, tmp_path
):
    kafka = new_deployment(kafka_bootstrap)
    audit = tmp_path / "audit.jsonl"
    config = write_config(tmp_path / "quoteflow.toml", kafka, audit)
    member = membership(ROLE, kafka)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start(config, first_log)
    try:
        wait_for(_holding(kafka, member.group_id), "the executor's partitions")
        # The same configuration again (same audit file): refused by the file's lock before
        # its producer could fence the first one, which trades on undisturbed.
        second = _start(config, second_log)
        assert second.wait(60) == 1
        output = second_log.read_text().strip().splitlines()
        assert "open by another writer" in output[-1] and "Traceback" not in second_log.read_text()
        wait_for(_took(audit, _send(kafka, _intent("after-second"))), "the first to go on")
        # A process joining with its instance id (a copy of the executor with its own
        # file): the newer member takes every partition and the first stops, one line, exit 1.
        stand_in = EventConsumer(kafka, member.group_id, ORDER_TOPICS, eof=True,
                                 **member.consumer_settings())
        try:
            while not stand_in.at_end:
                stand_in.poll(10, 0.1)
            assert first.wait(60) == 1
            _, members = _group(kafka, member.group_id)
            assert len(members) == 1 and members[0][2] == _partitions(kafka)
        finally:
            stand_in.close()
    finally:
        first.kill()
        first.wait(30)
    text = first_log.read_text()
    assert "Traceback" not in text
    assert f"consumer group {member.group_id} as {member.instance_id}" in text.splitlines()[-1]
    # Its run ends fenced in its trail, without its shutdown (tests/test_execute_fenced.py).
    assert [r["payload"]["executor"] for r in audit_records(audit)
            if r["action"] == "state"] == ["start", "fenced"]


def test_an_upgraded_deployment_takes_over_the_shared_groups_offsets(kafka_bootstrap, tmp_path):
    """The group all deployments shared (`executor`) committed past an intent: the
    deployment's own group starts there, once; the intent is not read again."""
    kafka = new_deployment(kafka_bootstrap)
    old = _send(kafka, _intent("before-upgrade"))
    topic = topic_name(kafka.prefix, "orders.intents")
    consumer = Consumer(kafka_config(kafka.bootstrap).client_settings()
                        | {"group.id": ROLE, "enable.auto.commit": False})
    ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(
        TopicPartition(topic, p), timeout=10)[1])
        for p in range(SPECS["orders.intents"].partitions)]
    consumer.commit(offsets=ends, asynchronous=False)
    consumer.close()
    new = _send(kafka, _intent("after-upgrade"))
    audit = tmp_path / "audit.jsonl"
    run_execute(Config(kafka=kafka, execute=paper_settings(tmp_path)), until_end=True)
    records = audit_records(audit)
    taken = {r["payload"]["intent_id"] for r in records if r["action"] == "intent"}
    assert new.intent_id in taken and old.intent_id not in taken
    carried = [r for r in records if r["action"] == "group_offsets_carried"]
    assert [(r["payload"]["from"], r["payload"]["to"]) for r in carried] \
        == [(ROLE, membership(ROLE, kafka).group_id)]
    # Once: the group has offsets of its own now.
    assert carry_offsets(kafka, ROLE, membership(ROLE, kafka).group_id, ORDER_TOPICS) == []


def test_acls_narrowed_to_the_new_names_leave_nothing_to_carry(kafka_bootstrap):
    """A principal without a grant for the shared group starts its own group from nothing
    (the `ingest` user here: its groups are its deployment's `ingest.<prefix>.` only); one
    without a grant for the new group is refused, as its consumer would be."""
    deployment = new_deployment(kafka_bootstrap)
    ingest = principal_config(deployment, "ingest")
    own = role_scope("ingest", deployment.prefix)
    assert carry_offsets(ingest, ROLE, f"{own}new", ["md.book"]) == []
    with pytest.raises(KafkaException, match="GROUP_AUTHORIZATION_FAILED"):
        carry_offsets(ingest, f"{own}old", f"{ROLE}.new", ["md.book"])
