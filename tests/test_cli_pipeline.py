"""The operator's commands on real services: topics → ingest replay → persist.

A real Kafka broker and a real PostgreSQL, both started by the test session.
"""

import json

import psycopg
import pytest
from typer.testing import CliRunner

from connectors.kafka.producer import EventProducer
from connectors.kafka.topics import topic_name
from models.audit import AuditChain, AuditRecord, canonical, verify_lines
from quoteflow.cli import app
from quoteflow.config import load_config
from tests.conftest import SHARED_DATA
from tests.kafka_service import fresh_prefix, kafka_config, kafka_toml
from tests.postgres_service import fresh_database

pytestmark = pytest.mark.integration
runner = CliRunner()
SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_replay_ingest_then_persist_lands_every_event(kafka_bootstrap, postgres_dsn, tmp_path):
    with fresh_database(postgres_dsn) as dsn:
        config = tmp_path / "quoteflow.toml"
        config.write_text(
            kafka_toml(kafka_config(kafka_bootstrap, prefix=fresh_prefix()))
            + f'[postgres]\ndsn = "{dsn}"\n'
        )
        assert invoke("topics", "-c", config).exit_code == 0
        records = publish_audit_trail(load_config(config).kafka)
        ingested = invoke("ingest", "replay", SPOT_ETH, "-c", config)
        assert ingested.exit_code == 0, ingested.output
        counts = json.loads(ingested.output)["events"]
        persisted = invoke("persist", "-c", config, "--until-end")
        assert persisted.exit_code == 0, persisted.output
        with psycopg.connect(dsn) as conn:
            bbo = conn.execute("SELECT count(*) FROM md_bbo").fetchone()[0]
            trades = conn.execute("SELECT count(*) FROM md_trades").fetchone()[0]
            stored = conn.execute(
                "SELECT seq, ts_ns, actor, action, payload, prev_hash, hash FROM audit ORDER BY seq"
            ).fetchall()
        assert (bbo, trades) == (counts["bbo"], counts["trade"])
        assert [r.hash for r in records] == [row[-1] for row in stored]
        relinked = [
            canonical(AuditRecord(seq=seq, ts=ts, actor=actor, action=action, payload=payload,
                                  prev_hash=prev, hash=digest)) + b"\n"
            for seq, ts, actor, action, payload, prev, digest in stored
        ]
        assert verify_lines(relinked).ok, "the chain re-verifies from the database"


def publish_audit_trail(kafka) -> list[AuditRecord]:
    chain = AuditChain()
    records = [chain.append(n, "alice", "pause", {"target": "*", "n": n}) for n in range(1, 4)]
    producer = EventProducer(kafka)
    for record in records:
        producer.send_bytes(topic_name(kafka.prefix, "audit"), record.actor, canonical(record))
    producer.close()
    return records


def test_live_ingest_rejects_a_malformed_instrument(tmp_path):
    result = invoke("ingest", "live", "--instrument", "krakenBTC/USD")
    assert result.exit_code == 2
