"""The operator's commands on real services: topics → ingest replay → persist.

A real Kafka broker and a real PostgreSQL, both started by the test session.
"""

import json

import psycopg
import pytest
from typer.testing import CliRunner

from quoteflow.cli import app
from tests.conftest import SHARED_DATA
from tests.kafka_service import fresh_prefix
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
            f'[kafka]\nbootstrap = "{kafka_bootstrap}"\nprefix = "{fresh_prefix()}"\n'
            f'[postgres]\ndsn = "{dsn}"\n'
        )
        assert invoke("topics", "-c", config).exit_code == 0
        ingested = invoke("ingest", "replay", SPOT_ETH, "-c", config)
        assert ingested.exit_code == 0, ingested.output
        counts = json.loads(ingested.output)["events"]
        persisted = invoke("persist", "-c", config, "--until-end")
        assert persisted.exit_code == 0, persisted.output
        with psycopg.connect(dsn) as conn:
            bbo = conn.execute("SELECT count(*) FROM md_bbo").fetchone()[0]
            trades = conn.execute("SELECT count(*) FROM md_trades").fetchone()[0]
        assert (bbo, trades) == (counts["bbo"], counts["trade"])


def test_live_ingest_rejects_a_malformed_instrument(tmp_path):
    result = invoke("ingest", "live", "--instrument", "krakenBTC/USD")
    assert result.exit_code == 2
