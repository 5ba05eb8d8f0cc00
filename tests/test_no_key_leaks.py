"""No plaintext exchange key anywhere (issue 6): a full run with a canary key, then a search.

The run: a trader adds a canary key through the control API (real Keycloak tokens) and tests
it; a Binance spot recording is replayed into md.*, the quote flow makes intents, the
executor loads the trader's key from the secret store and trades with it on
`tests/ccxt_standin.py` (a local stand-in for Binance spot's REST API that verifies the
HMAC signatures; real exchanges are not reachable from here), one of its orders fills, the
persist flow writes every topic into a real PostgreSQL, and the API lists orders,
positions, audit and keys. Then every file the run wrote (secret store, audit files, the
log file every logger wrote to at DEBUG), every Kafka topic of the deployment, every row of
every database table and every API response body are searched with
`connectors.secrets.leak_scan` (plain, base64, hex, url-encoded, JSON-escaped forms).
The positive control plants the canary in each kind of place and finds it.
"""

from __future__ import annotations

import base64
import logging
import threading
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import jwt
import psycopg
import pytest
from bytewax.testing import run_main
from fastapi.testclient import TestClient

from connectors.kafka import EventProducer, topic_name
from connectors.kafka.bytewax_io import KafkaEventSource
from connectors.kafka.topics import TOPICS
from connectors.secrets import MASTER_KEY_ENV, MasterKey
from connectors.secrets.leak_scan import scan_bytes, scan_paths
from connectors.timescale import TimescaleConfig
from flows.execute_kafka import run_execute
from flows.ingest import run_ingest
from flows.persist import build_persist_flow
from flows.processes import build_flow
from quoteflow.api import ApiServices, create_app
from quoteflow.api.services import CLIENT_SECRET_ENV
from quoteflow.config import (
    ApiConfig,
    Config,
    ExecuteConfig,
    KeycloakConfig,
    SecretsConfig,
)
from tests.api_client import Api, Recorder
from tests.ccxt_standin import BinanceSpotStandIn, StandInThread
from tests.conftest import SHARED_DATA
from tests.execute_runs import WAIT_S, wait_for
from tests.kafka_service import new_deployment, read_topic
from tests.postgres_service import fresh_database

pytestmark = pytest.mark.integration

RECORDING = SHARED_DATA / "binance" / "spot" / "btcusdt_20240808.gz"
CANARY_KEY = "canaryEXECkey-5e0b1d7f93a24c68"
CANARY_SECRET = "canaryEXECsecret-0f6a2e91c4b7d358"
CANARIES = (CANARY_KEY, CANARY_SECRET)


class RunLog:
    """Every logger of the process, at DEBUG, into one file for the scan."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path)
        self.handler.setLevel(logging.DEBUG)
        self.root = logging.getLogger()

    def __enter__(self) -> RunLog:
        self.level = self.root.level
        self.root.addHandler(self.handler)
        self.root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.level)
        self.handler.close()


def every_topic(kafka) -> dict[str, bytes]:
    return {spec.name: b"\n".join((key or b"") + b"\t" + value
                                  for _, key, value in read_topic(kafka, spec.name))
            for spec in TOPICS}


def every_table(dsn: str) -> dict[str, bytes]:
    with psycopg.connect(dsn) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) "
            "FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_type = 'BASE TABLE'"
        )]
        return {table: "\n".join(row[0] for row in conn.execute(
            f"SELECT t::text FROM {table} t"  # table names from the catalog, quoted
        )).encode() for table in tables}


def hits(places: dict[str, bytes], canary: str) -> list:
    return [hit for where, data in places.items() for hit in scan_bytes(data, canary, where)]


@pytest.fixture(scope="module")
def canary_run(keycloak_realm, kafka_bootstrap, postgres_dsn, tmp_path_factory):
    """The whole run; yields what it wrote and answered, by kind of place."""
    directory = tmp_path_factory.mktemp("canary")
    kafka = new_deployment(kafka_bootstrap)
    environ = {MASTER_KEY_ENV: MasterKey.generate().to_base64(),
               CLIENT_SECRET_ENV: keycloak_realm.admin.client_secret("quoteflow-api")}
    with RunLog(directory / "run.log"), StandInThread(lambda: BinanceSpotStandIn(
            CANARY_KEY, CANARY_SECRET, {"BTC": Decimal(1), "USDT": Decimal(1_000_000)})
    ) as standin, fresh_database(postgres_dsn) as dsn:
        ccxt_options = {**standin.ccxt_config(), "rateLimit": 1}
        config = Config(
            kafka=kafka, postgres=TimescaleConfig(dsn=dsn),
            keycloak=KeycloakConfig(issuer=keycloak_realm.issuer),
            secrets=SecretsConfig(path=str(directory / "secrets" / "keys.json")),
            api=ApiConfig(audit_path=str(directory / "audit" / "api.jsonl"),
                          exchange_sandbox=True, key_test_timeout_s=5.0),
        )
        services = ApiServices.from_config(config, environ,
                                           exchange_overrides={"binance": ccxt_options})
        with TestClient(create_app(config, services)) as client:
            api = Api(client, Recorder(), keycloak_realm)
            trader = api.token("trader")
            added = api.call("POST", "/keys", trader, json={
                "exchange": "binance", "api_key": CANARY_KEY, "secret": CANARY_SECRET,
            })
            assert added.status_code == 201, added.json()
            key = added.json()
            tested = api.call("POST", f"/keys/binance/{key['key_id']}/test", trader).json()
            assert tested["ok"], tested  # the stand-in knows the canary key

            owner = jwt.decode(trader, options={"verify_signature": False})["sub"]
            settings = ExecuteConfig(
                venue="ccxt", exchange="binance", symbols=["BTC/USDT"], owner=owner,
                sandbox=True, ccxt_options=ccxt_options, intent_max_age_s=10**9,
                reconcile_interval_s=0.5, audit_path=str(directory / "audit" / "executor.jsonl"),
            )
            run_config = Config(kafka=kafka, secrets=config.secrets, execute=settings)
            _trade(run_config, environ, standin)
            run_main(build_persist_flow(
                KafkaEventSource(kafka, [t.name for t in TOPICS], tail=False),
                TimescaleConfig(dsn=dsn),
            ))
            for path in ("/keys", "/orders", "/positions", "/audit?limit=500", "/status"):
                response = api.call("GET", path, trader)
                assert response.status_code == 200, (path, response.text)
            yield {
                "directory": directory, "kafka": kafka, "dsn": dsn,
                "responses": api.recorder.bodies, "standin": standin,
            }


def _trade(config: Config, environ: dict, standin) -> None:
    """Market data and intents, then the executor until one of its orders has filled."""
    kafka = config.kafka
    run_ingest("replay", kafka, paths=[RECORDING])
    run_main(build_flow("quote", Config(kafka=kafka), tail=False))
    stop = threading.Event()
    runner = threading.Thread(target=run_execute, args=(config,),
                              kwargs={"stop": stop, "environ": environ})
    runner.start()
    try:
        resting = wait_for(standin.open_orders, "orders signed with the canary key")
        standin.fill(resting[0], Decimal("0.0005"))
        audit = Path(config.execute.audit_path)  # type: ignore[union-attr]
        wait_for(lambda: b'"action":"fill"' in audit.read_bytes().replace(b" ", b""),
                 "reconciliation to find the fill")
    finally:
        stop.set()
        runner.join(WAIT_S)
    assert not runner.is_alive()


def test_the_canary_key_was_really_used(canary_run):
    standin = canary_run["standin"]
    assert standin.orders and standin.trades  # signed requests the stand-in verified
    with psycopg.connect(canary_run["dsn"]) as conn:
        fills = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
    assert fills >= 1


def test_no_file_topic_table_log_or_response_holds_the_canary(canary_run):
    directory = canary_run["directory"]
    assert (directory / "run.log").stat().st_size > 0  # the loggers did write
    topics = every_topic(canary_run["kafka"])
    assert topics["audit"] and topics["orders.events"]
    tables = every_table(canary_run["dsn"])
    responses = {f"response {n}": body for n, body in enumerate(canary_run["responses"])}
    for canary in CANARIES:
        assert scan_paths([directory], canary) == []
        assert hits(topics, canary) == []
        assert hits(tables, canary) == []
        assert hits(responses, canary) == []


def test_the_scan_finds_a_planted_canary(kafka_bootstrap, postgres_dsn, tmp_path):
    """Positive control: the same searches over the same kinds of places find a plant (in
    places of their own, so the run's scan stays clean whatever the test order)."""
    plant = tmp_path / "plant.log"
    plant.write_text(f"credentials={CANARY_SECRET}\n")
    assert [h.form for h in scan_paths([tmp_path], CANARY_SECRET)] == ["plain"]
    kafka = new_deployment(kafka_bootstrap)
    producer = EventProducer(kafka)
    producer.send_bytes(topic_name(kafka.prefix, "audit"), "plant",
                        b'{"secret": "' + CANARY_SECRET.encode().hex().encode() + b'"}')
    producer.close()
    assert {h.form for h in hits(every_topic(kafka), CANARY_SECRET)} == {"hex"}
    with fresh_database(postgres_dsn) as dsn:
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE plant (note text)")
            conn.execute("INSERT INTO plant VALUES (%s)",
                         [base64.b64encode(b"key=" + CANARY_KEY.encode()).decode()])
        found = hits(every_table(dsn), CANARY_KEY)
    assert found and all(h.form.startswith("base64") for h in found)
    assert {h.where for h in found} == {"public.plant"}
    response = b'{"detail": "' + quote(f"{CANARY_SECRET}?x", safe="").encode() + b'"}'
    assert scan_bytes(response, CANARY_SECRET, "response")
