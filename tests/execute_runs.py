"""`quoteflow execute` on a real Kafka broker, for the executor's end-to-end tests: a
deployment carrying the quote flow's intents, the executor's configuration (the paper venue),
its audit trail and its topics read back, the owner's key store, intents made and sent by
hand, and the executor as its own OS process (started, or fenced by a successor).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

from bytewax.testing import run_main

from connectors.audit_store import topic_links, unpublished_tail, verify_audit
from connectors.kafka import EventProducer, KafkaConfig
from connectors.secrets import MASTER_KEY_ENV, LocalSecretStore, MasterKey
from flows.ingest import run_ingest
from flows.processes import build_flow
from models.events import OrderIntent, Quote, decode
from quoteflow.api.services import open_secret_store
from quoteflow.config import Config, ExecuteConfig, SecretsConfig
from tests.conftest import SHARED_DATA
from tests.flow_runs import QUOTEFLOW
from tests.kafka_service import kafka_toml, new_deployment, read_topic

SPOT_BTC = SHARED_DATA / "binance/spot/btcusdt_20240808.gz"
WAIT_S = 60
OWNER = "trader-subject-1"  # the executor's owner: whose exchange key it trades with
START = {"BTC": Decimal("1"), "USDT": Decimal("100000")}  # the owner's balances at a venue


def deployment_with_intents(bootstrap: str) -> KafkaConfig:
    """A fresh deployment: the recording on md.*, the quote flow's intents on orders.intents."""
    kafka = new_deployment(bootstrap)
    run_ingest("replay", kafka, paths=[SPOT_BTC])
    run_main(build_flow("quote", Config(kafka=kafka), tail=False))
    return kafka


def paper_settings(tmp_path: Path, **overrides) -> ExecuteConfig:
    """The executor's settings on the paper venue, its trail `tmp_path/audit.jsonl`."""
    # The paper venue's rate limit is wall-clock: a replay runs far faster than the market did.
    return ExecuteConfig(symbols=["BTC/USDT"], paper_rate_limit_ms=0.01,
                         rate_limit_capacity=1000, audit_path=str(tmp_path / "audit.jsonl"),
                         **overrides)


def write_config(path: Path, kafka: KafkaConfig, audit: Path) -> Path:
    """`quoteflow execute` on the paper venue, its trail in `audit`."""
    path.write_text(
        kafka_toml(kafka)
        + f'[execute]\nsymbols = ["BTC/USDT"]\npaper_rate_limit_ms = 0.01\n'
        f'rate_limit_capacity = 1000\naudit_path = "{audit}"\n'
    )
    return path


def events_on(kafka: KafkaConfig, topic: str) -> list:
    """Every event on the deployment's `topic`, decoded."""
    return [decode(value) for _, _, value in read_topic(kafka, topic)]


def audit_records(path: Path) -> list[dict]:
    """The complete lines of an audit file the executor may be appending to right now."""
    if not path.exists():
        return []
    complete, _, _ = path.read_bytes().rpartition(b"\n")
    return [json.loads(line) for line in complete.splitlines() if line]


def wait_for(condition, what: str):
    """`condition()` once it is true (polled every 0.1 s); fails after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def key_store(tmp_path: Path) -> tuple[LocalSecretStore, dict[str, str], SecretsConfig]:
    """A local secret store under `tmp_path`; (the store, the environment with its master
    key, its configuration)."""
    environ = {MASTER_KEY_ENV: MasterKey.generate().to_base64()}
    secrets = SecretsConfig(backend="local", path=str(tmp_path / "keys.json"))
    return open_secret_store(secrets, environ), environ, secrets


def quote_intent(bid: str, ask: str) -> OrderIntent:
    """A fresh intent quoting 0.001 BTC at `bid` and `ask` on Binance spot BTC/USDT."""
    now = time.time_ns()
    return OrderIntent(
        intent_id=uuid.uuid4().hex, venue="binance", symbol="BTC/USDT", ts=now,
        strategy="test", bids=[Quote(Decimal(bid), Decimal("0.001"))],
        asks=[Quote(Decimal(ask), Decimal("0.001"))], reference_mid=Decimal("60000.05"),
        trigger_receive_ts=now,
    )


def resumes_per_run(records: list[dict]) -> list[int]:
    """How many `intent_resumed` records each run wrote, in the order of the runs."""
    runs: list[int] = []
    for record in records:
        if record["action"] == "state" and record["payload"].get("executor") == "start":
            runs.append(0)
        elif record["action"] == "intent_resumed":
            runs[-1] += 1
    return runs


def start_execute(config: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`quoteflow execute` as its own OS process, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([str(QUOTEFLOW), "execute", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)


def send(kafka, *intents) -> None:
    """Put `intents` on the deployment's topics, flushed."""
    producer = EventProducer(kafka)
    for intent in intents:
        producer.send(intent)
    producer.close()


def ends_fenced(process: subprocess.Popen, log: Path, audit: Path, kafka) -> list[dict]:
    """Executor A, fenced by a successor, exited 1 with one line, its trail ends with its
    `fenced` record (after which it neither acted nor shut down), and nothing of it after the
    fence reached Kafka; its trail's records."""
    assert process.wait(60) == 1, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "another process" in text.strip().splitlines()[-1]
    records = audit_records(audit)
    assert verify_audit(audit).ok
    last = records[-1]
    assert (last["action"], last["payload"]["executor"]) == ("state", "fenced")
    assert "another process" in last["payload"]["reason"]
    assert not [r for r in records if r["action"] == "state"
                and r["payload"]["executor"] == "shutdown"]
    # Not on the audit topic: a run that continues this file publishes it, as the outbox's
    # tail (the records of the transaction the fence aborted come before it).
    anchored = {link.hash for link in topic_links(kafka)}
    assert last["hash"] not in anchored
    assert unpublished_tail(audit, topic_links(kafka))[-1].hash == last["hash"]
    return records


def successor_config(first_config: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The configuration of B, a successor to A (same deployment and account): A's (its trail
    `tmp_path/audit.jsonl`) with an audit file of its own; (the configuration, the file)."""
    config, audit = tmp_path / "b.toml", tmp_path / "b.jsonl"
    config.write_text(first_config.read_text().replace(str(tmp_path / "audit.jsonl"), str(audit)))
    return config, audit
