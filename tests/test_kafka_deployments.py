"""Two deployments on one broker cannot reach each other (real broker, real authorizer).

Deployments A and B have topic prefixes of their own; each process of each logs in as the
deployment's own user (`connectors.kafka.acls.user_name`). A's principals can neither read
nor write B's topics, A's executor can neither join B's executor group nor use B's
transactional ids, and setting up B's principals (`quoteflow bus principals`) leaves A's
passwords working. Before, both deployments' processes were the same users (`executor`):
setting up B granted them B's topics, their group and transactional-id grants were the
prefix `executor` (every deployment's), and B's passwords replaced A's.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from typer.testing import CliRunner

from connectors.kafka import KafkaConfig, KafkaConfigError, connect_admin, topic_name
from connectors.kafka.acls import (
    BY_NAME,
    PRINCIPALS,
    acl_bindings,
    nesting_deployments,
    new_password,
    scram_users,
    set_passwords,
    user_name,
)
from connectors.kafka.membership import membership
from connectors.kafka.replays import SHARED_REPLAY_GROUP, replay_group
from connectors.kafka.transactions import role_scope, transactional_id
from flows.execute_kafka import ORDER_TOPICS, ROLE
from flows.ingest import run_ingest
from quoteflow.cli import app
from tests.conftest import SHARED_DATA
from tests.kafka_service import kafka_toml, new_deployment, principal_config

pytestmark = pytest.mark.integration

SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"


@pytest.fixture(scope="module")
def deployments(kafka_bootstrap) -> tuple[KafkaConfig, KafkaConfig]:
    """A and B, each with every principal set up: B's after A's, as a second deployment
    joining the broker would be."""
    a, b = new_deployment(kafka_bootstrap), new_deployment(kafka_bootstrap)
    for deployment in (a, b):
        for principal in PRINCIPALS:
            principal_config(deployment, principal.name)
    return a, b


def _write_error(config: KafkaConfig, topic: str) -> KafkaError | None:
    """What the broker answers a write of one message to `topic` (a full name)."""
    results: list[KafkaError | None] = []
    producer = Producer(config.client_settings() | {"message.timeout.ms": 10_000})
    # Keyed: compacted topics refuse a message without a key.
    producer.produce(topic, b"{}", key=b"k", on_delivery=lambda error, _: results.append(error))
    producer.flush(20)
    assert len(results) == 1
    return results[0]


def _read_error(config: KafkaConfig, group: str, topic: str) -> KafkaError | None:
    """What the broker answers a reader of `topic`'s partition 0: its offsets (ListOffsets,
    which a fetch needs first), then a fetch from the start. `group`, one the principal may
    use, is only asked for its coordinator (the partition is assigned)."""
    consumer = Consumer(config.client_settings() | {"group.id": group,
                                                    "enable.auto.commit": False})
    try:
        partition = TopicPartition(topic, 0)
        try:
            _, end = consumer.get_watermark_offsets(partition, timeout=10)
        except KafkaException as error:
            return error.args[0]
        consumer.assign([TopicPartition(topic, 0, 0)])
        received = 0
        while received < end:
            messages = consumer.consume(10, 10)
            assert messages, f"{topic}: nothing read of {end} messages"
            for message in messages:
                if message.error() is not None:
                    return message.error()
                received += 1
        return None
    finally:
        consumer.close()


# A topic the principal may not describe is hidden from its metadata, so the client does not
# know its partitions; a fetch that got through would be refused.
_HIDDEN = (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART,
           KafkaError.TOPIC_AUTHORIZATION_FAILED)


def test_no_principal_of_one_deployment_reads_or_writes_the_others_topics(deployments):
    a, b = deployments
    for principal in PRINCIPALS:
        config = principal_config(a, principal.name)
        assert config.username == f"{a.prefix}.{principal.name}"
        visible = connect_admin(config).list_topics(timeout=10).topics
        assert not any(t.startswith(f"{b.prefix}.") for t in visible), principal.name
        assert any(t.startswith(f"{a.prefix}.") for t in visible), principal.name
        for name in principal.writes[:1]:
            assert _write_error(config, topic_name(a.prefix, name)) is None, principal.name
            error = _write_error(config, topic_name(b.prefix, name))
            assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        group = (principal.groups or [role_scope(r, a.prefix) for r in principal.scoped_groups]
                 or [""])[0]
        for name in principal.reads[:1]:
            assert _read_error(config, group, topic_name(a.prefix, name)) is None, principal.name
            error = _read_error(config, group, topic_name(b.prefix, name))
            assert error is not None and error.code() in _HIDDEN, (principal.name, error)


def _join_error(config: KafkaConfig, group: str) -> KafkaError | None:
    """What joining `group`, subscribed to the executor's own order topics, answers."""
    consumer = Consumer(config.client_settings() | {"group.id": group,
                                                    "enable.auto.commit": False})
    try:
        consumer.subscribe([topic_name(config.prefix, t) for t in ORDER_TOPICS])
        for _ in range(20):
            message = consumer.poll(1)
            if message is not None and message.error() is not None:
                return message.error()
            if consumer.assignment():
                return None
        raise AssertionError(f"neither joined nor refused {group}")
    finally:
        consumer.close()


def test_an_executor_joins_only_its_own_deployments_group(deployments):
    a, b = deployments
    executor = principal_config(a, ROLE)
    assert _join_error(executor, membership(ROLE, a).group_id) is None
    for group in (membership(ROLE, b).group_id, ROLE):
        error = _join_error(executor, group)
        assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, group


def _init_error(config: KafkaConfig, transactional: str) -> KafkaError | None:
    """What the broker answers a producer starting transactions with `transactional`."""
    producer = Producer(config.client_settings() | {"transactional.id": transactional})
    try:
        producer.init_transactions(20)
        return None
    except KafkaException as error:
        return error.args[0]


def test_an_executor_uses_only_its_own_deployments_transactional_ids(deployments):
    a, b = deployments
    executor = principal_config(a, ROLE)
    assert _init_error(executor, transactional_id(ROLE, a)) is None
    error = _init_error(executor, transactional_id(ROLE, b))
    assert error is not None
    assert error.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, error


def _bus_principals(deployment: KafkaConfig, tmp_path: Path, name: str) -> dict[str, str]:
    config = tmp_path / f"{name}.toml"
    config.write_text(kafka_toml(deployment))
    out = tmp_path / name
    result = CliRunner().invoke(app, ["bus", "principals", "-c", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    users = json.loads(result.output)["users"]
    return {process: str(out / f"{user}.password") for process, user in users.items()}


def test_setting_up_a_second_deployment_leaves_the_firsts_passwords_working(
    kafka_bootstrap, tmp_path
):
    a, b = new_deployment(kafka_bootstrap), new_deployment(kafka_bootstrap)
    files_a = _bus_principals(a, tmp_path, "a")
    files_b = _bus_principals(b, tmp_path, "b")
    assert set(files_a) == set(files_b) == {p.name for p in PRINCIPALS}
    for process, path in files_a.items():
        config = dataclasses.replace(a, username=user_name(process, a.prefix),
                                     password=None, password_file=path, connect_timeout_s=10)
        # Still known to the broker with the password A was given, and still A's rights.
        visible = connect_admin(config).list_topics(timeout=10).topics
        assert topic_name(a.prefix, "control") in visible, process
        assert topic_name(b.prefix, "control") not in visible, process
    assert not set(files_a.values()) & set(files_b.values())


def test_prefixes_whose_ids_nest_are_told_apart_from_the_rest():
    users = ["admin", "broker", "eu.executor", "eu.paper.api", "us.executor", "executor",
             "-.x.quote", "eu.paper.nobody"]
    assert nesting_deployments(users, "eu") == ["eu.paper"]
    assert nesting_deployments(users, "eu.paper") == ["eu"]
    assert nesting_deployments(users, "eu.paper.x") == ["eu", "eu.paper"]
    assert nesting_deployments(users, "us") == []
    assert nesting_deployments(users, "useast") == []
    # `executor.-.` is the empty prefix's scope and the prefix `-`'s.
    assert nesting_deployments(users, "-") == ["", "-.x"]
    assert nesting_deployments(users, "") == ["-.x"]


def test_principals_refuse_a_prefix_that_nests_with_another_deployments(
    kafka_bootstrap, tmp_path
):
    a = new_deployment(kafka_bootstrap)
    api = principal_config(a, "api").username
    # A new credential reaches the broker's metadata a moment after the controller took it.
    admin, deadline = connect_admin(a), time.monotonic() + 10
    while api not in scram_users(admin):
        assert time.monotonic() < deadline, f"{api} never listed"
        time.sleep(0.1)
    config = tmp_path / "nested.toml"
    config.write_text(kafka_toml(dataclasses.replace(a, prefix=f"{a.prefix}.paper")))
    result = CliRunner().invoke(app, ["bus", "principals", "-c", str(config),
                                      "--out", str(tmp_path / "bus")])
    assert result.exit_code == 2
    assert f"nests with the prefix of deployment(s) '{a.prefix}'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "bus").exists()


def test_retire_deletes_a_shared_users_acls_and_password(kafka_bootstrap, tmp_path):
    """The upgrade's last step: the user every deployment shared (here a fresh name standing
    for `executor`), granted two deployments' rights, is gone: no login, no binding left."""
    a, b = new_deployment(kafka_bootstrap), new_deployment(kafka_bootstrap)
    shared = f"shared-{uuid.uuid4().hex[:8]}"
    password = new_password()
    admin = connect_admin(a)
    set_passwords(admin, {shared: password})
    granted = [AclBinding(x.restype, x.name, x.resource_pattern_type, f"User:{shared}", x.host,
                          x.operation, x.permission_type)
               for deployment in (a, b) for x in acl_bindings(BY_NAME[ROLE], deployment.prefix)]
    for future in admin.create_acls(granted, request_timeout=30).values():
        future.result()
    as_shared = dataclasses.replace(a, username=shared, password=password, password_file=None,
                                    connect_timeout_s=5)
    visible = connect_admin(as_shared).list_topics(timeout=10).topics
    assert topic_name(b.prefix, "control") in visible
    config = tmp_path / "admin.toml"
    config.write_text(kafka_toml(a))

    result = CliRunner().invoke(app, ["bus", "retire", shared, "-c", str(config)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"retired": [shared], "acl_bindings_deleted": len(granted)}
    with pytest.raises(KafkaConfigError, match=f"refused us as {shared}"):
        connect_admin(as_shared)
    left = admin.describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{shared}", None,
        AclOperation.ANY, AclPermissionType.ANY), request_timeout=30).result()
    assert left == []
    himself = CliRunner().invoke(app, ["bus", "retire", a.username, "-c", str(config)])
    assert himself.exit_code == 2 and "refusing to retire" in himself.output


def _commit_error(config: KafkaConfig, group: str) -> KafkaError | None:
    """What committing a replay marker of the deployment's md.book partition 0 to `group`
    answers (the marker's one write: an OffsetCommit), asked as `config`'s user."""
    marker = TopicPartition(topic_name(config.prefix, "md.book"), 0, 0, "done:x")
    admin = connect_admin(config)  # kept: a client dropped mid-request fails it
    (future,) = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [marker])], request_timeout=30).values()
    try:
        future.result()
        return None
    except KafkaException as error:
        return error.args[0]


def test_ingest_keeps_its_replay_marker_in_its_own_deployments_group(deployments):
    """A's ingest commits its replay marker to A's group only: not to B's, and not to the
    group every deployment shared before (where one could break another's replays)."""
    a, b = deployments
    ingest = principal_config(a, "ingest")
    assert _commit_error(ingest, replay_group(a.prefix)) is None
    for group in (replay_group(b.prefix), SHARED_REPLAY_GROUP):
        error = _commit_error(ingest, group)
        assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, group


def test_an_upgraded_deployment_keeps_its_replay_marker_and_loses_the_old_grant(
    kafka_bootstrap, tmp_path
):
    """Upgrading: the marker the shared group held for the deployment's topics moves to its
    own group when `bus principals` runs (as the admin), so the same replay again publishes
    nothing; the shared group's grant an older version gave the ingest user is deleted."""
    a = new_deployment(kafka_bootstrap)
    replayed = run_ingest("replay", a, paths=[SPOT_ETH])
    assert replayed["published"] is True
    admin = connect_admin(a)
    # As the version before left it: the marker in the shared group, and its grant.
    own = Consumer(a.client_settings() | {"group.id": replay_group(a.prefix)})
    marker = own.committed(_market_partitions(a), timeout=10)
    own.close()
    assert marker and all(m.metadata for m in marker)
    shared = Consumer(a.client_settings() | {"group.id": SHARED_REPLAY_GROUP})
    shared.commit(offsets=marker, asynchronous=False)
    shared.close()
    for future in admin.delete_consumer_groups([replay_group(a.prefix)],
                                               request_timeout=30).values():
        future.result()
    old_grant = AclBinding(ResourceType.GROUP, "ingest", ResourcePatternType.PREFIXED,
                           f"User:{user_name('ingest', a.prefix)}", "*", AclOperation.READ,
                           AclPermissionType.ALLOW)
    for future in admin.create_acls([old_grant], request_timeout=30).values():
        future.result()

    config = tmp_path / "a.toml"
    config.write_text(kafka_toml(a))
    result = CliRunner().invoke(app, ["bus", "principals", "-c", str(config),
                                      "--out", str(tmp_path / "bus")])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["replay_marker_partitions_carried"] == len(marker)
    again = run_ingest("replay", a, paths=[SPOT_ETH])
    assert again == {"replay": replayed["replay"], "published": False,
                     "messages": again["messages"]}
    left = admin.describe_acls(AclBindingFilter(
        ResourceType.GROUP, None, ResourcePatternType.ANY,
        f"User:{user_name('ingest', a.prefix)}", None, AclOperation.ANY,
        AclPermissionType.ANY), request_timeout=30).result()
    assert [(x.name, x.resource_pattern_type) for x in left] == [
        (role_scope("ingest", a.prefix), ResourcePatternType.PREFIXED)]


def _market_partitions(config: KafkaConfig) -> list[TopicPartition]:
    listed = connect_admin(config).list_topics(timeout=10).topics
    return [TopicPartition(topic_name(config.prefix, t), p)
            for t in ("md.book", "md.bbo", "md.trades")
            for p in sorted(listed[topic_name(config.prefix, t)].partitions)]
