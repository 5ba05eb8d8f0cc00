"""A real Kafka broker for the test session, started on first use and stopped at the end.

`scripts/services/kafka.sh` does the work (fetching the jars once into the user cache,
formatting KRaft storage, starting a combined broker/controller on 127.0.0.1); this module
picks free ports, waits until the broker answers an AdminClient, and stops it. Set
`QUOTEFLOW_TEST_KAFKA_DIR` to the data directory of a broker you already have
(`./dev kafka`; its `client.env` says where it is and how to log in). Tests isolate
themselves with a topic prefix of their own (`fresh_prefix`).

The broker is secured as every quoteflow broker is (SASL SCRAM-SHA-512 over TLS, ACLs):
`kafka_bootstrap` stays the plain address, and `kafka_config(bootstrap, ...)` (used by
`new_deployment`) builds a `KafkaConfig` with the broker's admin credentials, so tests act
as the admin unless they ask for a process's principal (`principal_config`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connectors.kafka import KafkaConfig, connect_admin, ensure_topics, topic_name
from connectors.kafka.acls import BY_NAME, apply_acls, new_password, set_passwords, user_name
from connectors.kafka.config import read_client_env
from quoteflow.config import load_config

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "scripts" / "services" / "kafka.sh"
_START_TIMEOUT_S = 180  # includes the one-time jar download on a new machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The admin's settings of each broker the session knows, by bootstrap address.
_ADMINS: dict[str, KafkaConfig] = {}


def _admin_from(directory: Path) -> KafkaConfig:
    """The admin's KafkaConfig from the broker's client.env, through quoteflow's own loader."""
    environ = read_client_env(directory / "client.env")
    return dataclasses.replace(load_config(None, environ).kafka, connect_timeout_s=30)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("QUOTEFLOW_TEST_KAFKA_DIR")
    if existing:
        yield register_broker(Path(existing))
        return
    directory = tmp_path_factory.mktemp("kafka")
    start = subprocess.run(
        [str(KAFKA_SCRIPT), "start", str(directory), str(_free_port()), str(_free_port())],
        capture_output=True, text=True, timeout=_START_TIMEOUT_S, check=False,
    )
    try:
        if start.returncode != 0:
            pytest.fail(f"could not start Kafka:\n{start.stderr}", pytrace=False)
        bootstrap = register_broker(directory)
        assert start.stdout.strip().splitlines()[-1] == bootstrap
        connect_admin(kafka_config(bootstrap))
        yield bootstrap
    finally:
        subprocess.run([str(KAFKA_SCRIPT), "stop", str(directory)], check=False, timeout=60)


def kafka_config(bootstrap: str, **settings) -> KafkaConfig:
    """A KafkaConfig for `bootstrap` as its admin (plain for an address no broker of the
    session has, e.g. a closed port), with `settings` replaced."""
    admin = _ADMINS.get(bootstrap)
    if admin is None:
        return KafkaConfig(bootstrap=bootstrap, **settings)
    return dataclasses.replace(admin, **settings)


def kafka_toml(config: KafkaConfig) -> str:
    """The `[kafka]` section of a configuration file for `config` (never a password)."""
    return config.toml_section()


def register_broker(directory: Path) -> str:
    """A broker started by kafka.sh in `directory` (a test's own): its address, its admin
    known to `kafka_config`."""
    admin = _admin_from(directory)
    _ADMINS[admin.bootstrap] = admin
    return admin.bootstrap


def principal_config(deployment: KafkaConfig, name: str) -> KafkaConfig:
    """`deployment` as process `name` of connectors.kafka.acls.PRINCIPALS: the deployment's
    SCRAM user of it (`user_name`; a new password each call) and its ACLs for the
    deployment's prefix, made by the admin."""
    admin = connect_admin(kafka_config(deployment.bootstrap))
    user = user_name(name, deployment.prefix)
    password = new_password()
    set_passwords(admin, {user: password})
    apply_acls(admin, deployment.prefix, [BY_NAME[name]])
    return dataclasses.replace(deployment, username=user, password=password,
                               password_file=None, client_id=f"test-{name}")


def fresh_prefix() -> str:
    """A topic namespace of its own, so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"


def new_deployment(bootstrap: str) -> KafkaConfig:
    """A deployment with all of quoteflow's topics created under a fresh prefix."""
    prefix = fresh_prefix()
    config = kafka_config(bootstrap, prefix=prefix, account="acct-1", connect_timeout_s=10)
    ensure_topics(connect_admin(config), prefix)
    return config


# A topic nothing was written to may still be electing its partition leaders on a busy broker
# (NOT_LEADER_FOR_PARTITION on its offsets): that settles within seconds.
_SETTLING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)


def read_topic(config: KafkaConfig, name: str) -> list[tuple[int, bytes | None, bytes]]:
    """Every message on a topic (base name) as (partition, key, value), per partition in order.

    A plain assigned consumer with end offsets taken first: tests see exactly what was on the
    broker, independent of the code under test.
    """
    deadline = time.monotonic() + 10
    while True:
        try:
            return _read_topic(config, name)
        except KafkaException as exc:
            if exc.args[0].code() not in _SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _read_topic(config: KafkaConfig, name: str) -> list[tuple[int, bytes | None, bytes]]:
    topic = topic_name(config.prefix, name)
    consumer = Consumer(kafka_config(config.bootstrap).client_settings()
                        | {"group.id": "tests", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
        wanted = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        messages: list[tuple[int, bytes | None, bytes]] = []
        deadline = time.monotonic() + 30
        while wanted:
            assert time.monotonic() < deadline, f"{topic}: partitions {sorted(wanted)} unread"
            for message in consumer.consume(1000, 0.1):
                assert message.error() is None, message.error()
                messages.append((message.partition(), message.key(), message.value()))
            # The position, not the last message: a transaction's commit marker takes an
            # offset that is never delivered (the executor publishes in transactions).
            for position in consumer.position([TopicPartition(topic, p) for p in wanted]):
                if position.offset >= wanted[position.partition]:
                    wanted.pop(position.partition)
        return messages
    finally:
        consumer.close()
