"""Who may write the topics that move money, on a real broker with the real authorizer.

Each process's principal and ACLs come from connectors.kafka.acls.PRINCIPALS (the table
the dev stack uses too). Without credentials nothing connects; with another process's
credentials `control`, `orders.intents` and `orders.events` refuse the write.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from decimal import Decimal

import pytest
from bytewax.testing import run_main
from confluent_kafka import KafkaError, Producer

from connectors.kafka import (
    EventProducer,
    KafkaConfigError,
    KafkaDeliveryError,
    KafkaUnavailable,
    connect_admin,
    topic_name,
)
from connectors.kafka.acls import PRINCIPALS, acl_bindings, new_password, set_passwords
from connectors.kafka.transactions import role_scope
from connectors.timescale import TimescaleConfig, connect
from flows.execute_kafka import run_execute
from flows.ingest import run_ingest
from flows.persist import run_persist
from flows.processes import build_flow
from models.events import ControlCommand, Event, OrderEvent, OrderIntent, Quote
from quoteflow.config import Config, ExecuteConfig
from tests.conftest import SHARED_DATA
from tests.kafka_service import kafka_config, new_deployment, principal_config, read_topic
from tests.postgres_service import fresh_database

SPOT_BTC = SHARED_DATA / "binance/spot/btcusdt_20240808.gz"

# The only writer of each guarded topic, and an event that goes there.
GUARDED = {
    "control": "api",
    "orders.intents": "quote",
    "orders.events": "executor",
}


def _event(topic: str) -> Event:
    now = time.time_ns()
    if topic == "control":
        return ControlCommand(command_id=uuid.uuid4().hex, ts=now, issued_by="mallory",
                              action="kill")
    if topic == "orders.intents":
        return OrderIntent(intent_id=uuid.uuid4().hex, venue="binance", symbol="BTC/USDT",
                           ts=now, strategy="forged",
                           bids=[Quote(Decimal("60000"), Decimal("5"))], asks=[])
    return OrderEvent(venue="binance", symbol="BTC/USDT", ts=now, kind="fill",
                      client_order_id="forged", side="buy", price=Decimal("1"),
                      size=Decimal("5"))


def _write(config, event: Event) -> None:
    producer = EventProducer(config, **{"message.timeout.ms": 10_000})
    producer.send(event)
    producer.close(20)  # delivers or raises, and lets the client go either way


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap):
    return new_deployment(kafka_bootstrap)


@pytest.mark.parametrize("topic", sorted(GUARDED))
def test_only_the_owning_process_writes_a_guarded_topic(deployment, topic):
    for principal in PRINCIPALS:
        config = principal_config(deployment, principal.name)
        if principal.name == GUARDED[topic]:
            _write(config, _event(topic))
            continue
        with pytest.raises(KafkaDeliveryError, match=r"(?i)authoriz"):
            _write(config, _event(topic))
    # Exactly the owner's one message landed.
    assert len(read_topic(deployment, topic)) == 1


def test_a_client_without_credentials_cannot_connect_or_write(deployment):
    anonymous = dataclasses.replace(deployment, security_protocol="PLAINTEXT", username=None,
                                    password=None, password_file=None, ca_file=None,
                                    connect_timeout_s=3)
    with pytest.raises(KafkaUnavailable):
        connect_admin(anonymous)
    # A raw producer that skips the start-up check: its messages never get on the topic.
    failures: list[KafkaError] = []
    raw = Producer(anonymous.client_settings() | {"message.timeout.ms": 3000, "log_level": 0})
    raw.produce(topic_name(deployment.prefix, "control"), b"{}",
                on_delivery=lambda error, _: failures.append(error))
    raw.flush(10)
    assert len(failures) == 1 and failures[0] is not None
    assert all(value != b"{}" for _, _, value in read_topic(deployment, "control"))


def test_a_wrong_password_is_refused_with_a_clear_error(deployment):
    api = principal_config(deployment, "api")
    with pytest.raises(KafkaConfigError, match=f"refused us as {deployment.prefix}.api "):
        connect_admin(dataclasses.replace(api, password="guessed", connect_timeout_s=5))


def test_a_known_user_without_acls_can_do_nothing(deployment):
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    password = new_password()
    set_passwords(connect_admin(kafka_config(deployment.bootstrap)), {name: password})
    nobody = dataclasses.replace(deployment, username=name, password=password,
                                 password_file=None)
    visible = connect_admin(nobody).list_topics(timeout=10).topics
    assert not any(topic.startswith(f"{deployment.prefix}.") for topic in visible)
    failures: list[KafkaError] = []
    raw = Producer(nobody.client_settings() | {"message.timeout.ms": 5000})
    raw.produce(topic_name(deployment.prefix, "control"), b"{}",
                on_delivery=lambda error, _: failures.append(error))
    raw.flush(10)
    assert failures[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_table_gives_each_guarded_topic_one_writer():
    for principal in PRINCIPALS:
        bindings = acl_bindings(principal, "p")
        rights = {(b.name, b.operation.name) for b in bindings if b.restype.name == "TOPIC"}
        writes = {name for name, op in rights if op == "WRITE"}
        assert {b.name for b in bindings if b.restype.name == "TRANSACTIONAL_ID"} \
            == {role_scope(role, "p") for role in principal.transactions}
        assert writes == {topic_name("p", t) for t in principal.writes}
        assert ("p.control", "WRITE") not in rights or principal.name == "api"
        assert ("p.orders.intents", "WRITE") not in rights or principal.name == "quote"
        assert ("p.orders.events", "WRITE") not in rights or principal.name == "executor"


def test_the_pipeline_runs_with_each_process_as_its_own_principal(
    kafka_bootstrap, postgres_dsn, tmp_path
):
    """The table is enough to work, not only to forbid: ingest, the quote flow, the
    executor and persist each run as their own principal, with nothing more than their ACLs."""
    kafka = new_deployment(kafka_bootstrap)
    run_ingest("replay", principal_config(kafka, "ingest"), paths=[SPOT_BTC])
    run_main(build_flow("quote", Config(kafka=principal_config(kafka, "quote")), tail=False))
    intents = read_topic(kafka, "orders.intents")
    assert intents
    executor = principal_config(kafka, "executor")
    stats = run_execute(Config(kafka=executor, execute=ExecuteConfig(
        symbols=["BTC/USDT"], paper_rate_limit_ms=0.01, rate_limit_capacity=1000,
        audit_path=str(tmp_path / "audit.jsonl"))), until_end=True)
    assert stats.intents == len(intents)
    assert read_topic(kafka, "orders.events")
    with fresh_database(postgres_dsn) as dsn:
        run_persist(principal_config(kafka, "persist"), TimescaleConfig(dsn=dsn), tail=False)
        with connect(TimescaleConfig(dsn=dsn)) as conn:
            stored = conn.execute("SELECT count(*) FROM order_intents").fetchone()[0]
            assert stored == len(intents)
