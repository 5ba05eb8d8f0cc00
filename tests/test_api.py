"""The control API end to end: real Keycloak tokens, a real PostgreSQL and a real Kafka.

One module on purpose: the session's Keycloak starts once for all of it. Reads are checked
against what the real timescale writers stored from a real recording run through the quote
flow and the paper venue; commands against what is on the `control` topic; the audit trail
against the API's audit file and the `audit` topic. Exchange keys are tested against the
local Binance stand-in (`tests/ccxt_standin.py`): no exchange is reachable from here.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import jwt
import pytest
from bytewax.testing import run_main
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from connectors.audit_store import verify_audit
from connectors.kafka import KafkaConfig
from connectors.kafka.command_keys import CommandsConfig
from connectors.keycloak import TokenValidator
from connectors.replay.recordings import Recordings
from connectors.secrets import MASTER_KEY_ENV, MasterKey
from connectors.secrets.leak_scan import scan_bytes, scan_paths
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from flows.processes import build_quote_kafka_flow, quote_options
from models.audit import parse_line
from models.command_signing import CommandVerifier, public_key_text
from models.events import ControlCommand, Fill, OrderEvent, Position, decode
from models.flow_control import CommandGate, StrategyChoice, control_of
from models.risk import RiskEngine, parse_limits, reasons
from quoteflow.api import ApiServices, create_app
from quoteflow.api.services import CLIENT_SECRET_ENV
from quoteflow.config import (
    ApiConfig,
    Config,
    KeycloakConfig,
    QuoteConfig,
    SecretsConfig,
)
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from quoteflow.suggestion_store import PATH_ENV, publish
from tests.api_client import Api, Recorder
from tests.ccxt_standin import BinanceSpotStandIn, StandInThread
from tests.conftest import SHARED_DATA
from tests.kafka_service import new_deployment, read_topic
from tests.keycloak_service import TestRealm
from tests.postgres_service import fresh_database

pytestmark = pytest.mark.integration

RECORDING = SHARED_DATA / "binance" / "spot" / "btcusdt_20240808.gz"
ORIGIN = "https://ops.example.test"
CANARY_KEY = "canaryKEY-7d1f0c2b9a8e4f60"
CANARY_SECRET = "canarySECRET-5b3e9a1c7f2d4e80a6"
STANDIN_KEY, STANDIN_SECRET = "standin-key-0a1b2c3d", "standin-secret-9f8e7d6c5b"
RISK = {"max_position": "0.5", "instruments": {"binance:BTC/USDT": {"max_order_size": "0.01"}}}
# The API signs its commands, so the quote flow's gate can apply them (test_strategy_...).
COMMAND_KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trading_events() -> list:
    """Order events, fills and positions of the quote flow on a slice of a real recording."""
    events: list = []
    run_paper_trading(
        itertools.islice(Recordings([RECORDING]).events(), 150_000),
        TradingOptions("avellaneda-stoikov-infinite"),
        on_output=lambda batch: events.extend(
            e for e in batch if isinstance(e, OrderEvent | Fill | Position)
        ),
    )
    return events


@pytest.fixture(scope="module")
def stack(
    keycloak_realm: TestRealm, kafka_bootstrap: str, postgres_dsn: str,
    tmp_path_factory: pytest.TempPathFactory, trading_events: list,
) -> Iterator[tuple[Api, Config, Path]]:
    directory = tmp_path_factory.mktemp("api")
    kafka = new_deployment(kafka_bootstrap)
    with StandInThread(lambda: BinanceSpotStandIn(
            STANDIN_KEY, STANDIN_SECRET, {"USDT": Decimal(1000)})) as standin, \
            fresh_database(postgres_dsn) as dsn:
        with connect(TimescaleConfig(dsn=dsn)) as conn:
            migrate(conn)
            writer = EventWriter(conn, TimescaleConfig(dsn=dsn))
            writer.write(trading_events)
            writer.flush()
        config = Config(
            kafka=kafka,
            postgres=TimescaleConfig(dsn=dsn),
            keycloak=KeycloakConfig(issuer=keycloak_realm.issuer),
            secrets=SecretsConfig(path=str(directory / "keys.json")),
            quote=QuoteConfig(strategy="glft", params={"gamma": "0.05"}),
            api=ApiConfig(audit_path=str(directory / "audit" / "api.jsonl"),
                          cors_origins=[ORIGIN], exchange_sandbox=True, key_test_timeout_s=5.0),
            risk=RISK,
            commands=CommandsConfig(signing_key=base64.b64encode(
                COMMAND_KEY.private_bytes_raw()).decode()),
        )
        services = ApiServices.from_config(
            config,
            {MASTER_KEY_ENV: MasterKey.generate().to_base64(),
             CLIENT_SECRET_ENV: keycloak_realm.admin.client_secret("quoteflow-api")},
            # ccxt's binance sandbox URLs pointed at the stand-in, as the executor's tests do.
            exchange_overrides={"binance": standin.ccxt_config()},
        )
        with TestClient(create_app(config, services)) as client:
            yield Api(client, Recorder(), keycloak_realm), config, directory


@pytest.fixture(scope="module")
def api(stack) -> Api:
    return stack[0]


@pytest.fixture(scope="module")
def kafka(stack) -> KafkaConfig:
    return stack[1].kafka


def _write(config: Config, events: list) -> None:
    with connect(TimescaleConfig(dsn=config.postgres.dsn)) as conn:
        writer = EventWriter(conn, TimescaleConfig(dsn=config.postgres.dsn))
        writer.write(events)
        writer.flush()


def _commands(kafka: KafkaConfig) -> list[tuple[bytes | None, ControlCommand]]:
    return [(key, decode(value)) for _, key, value in read_topic(kafka, "control")]


def _audit_file(stack) -> list:
    path = Path(stack[1].api.audit_path)
    return [parse_line(line) for line in path.read_bytes().splitlines(keepends=True)]


# -- authentication and roles ----------------------------------------------------------------


def test_health_needs_no_token_and_readiness_sees_every_system(api: Api) -> None:
    assert api.call("GET", "/health").json() == {"status": "ok"}
    ready = api.call("GET", "/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}, ready.json()
    assert api.call("GET", "/ready", api.token("trader")).json() == {"ready": True}
    detailed = api.call("GET", "/ready", api.token("admin"))
    assert detailed.status_code == 200, detailed.json()
    assert set(detailed.json()["checks"]) == {"database", "kafka", "keycloak"}


def test_missing_malformed_forged_and_foreign_tokens_are_401(api: Api) -> None:
    viewer = api.token("viewer")
    header = jwt.get_unverified_header(viewer)
    claims = jwt.decode(viewer, options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": header["kid"]})
    grafana = api.tokens("viewer", "grafana")["access_token"]  # not for quoteflow-api
    id_token = api.tokens("viewer")["id_token"]
    for token, reason in [
        (None, "no bearer token"), ("not-a-jwt", "not a JWT"),
        (forged, "signature does not match"), (grafana, "not meant for quoteflow-api"),
        (id_token, "not an access token"),
    ]:
        response = api.call("GET", "/status", token)
        assert response.status_code == 401, reason
        assert reason in response.json()["detail"]
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_expired_token_is_401(api: Api, stack) -> None:
    realm = api.realm
    lifespan = realm.admin.realm_settings()["accessTokenLifespan"]
    realm.admin.update_realm(accessTokenLifespan=1)
    try:
        token = realm.login(realm.add_user("viewer", otp=False))["access_token"]
    finally:
        realm.admin.update_realm(accessTokenLifespan=lifespan)
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    config = stack[1]
    # The production leeway (10 s) is the validator's own tested property; none here.
    services = ApiServices.from_config(config, {})
    services.validator = TokenValidator(config.keycloak.issuer, leeway_s=0)
    time.sleep(max(0.0, expiry + 1.5 - time.time()))
    with TestClient(create_app(config, services)) as client:
        response = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "token has expired"}


def test_a_disabled_or_demoted_user_cannot_act_with_the_token_in_hand(
    api: Api, stack, kafka: KafkaConfig
) -> None:
    """Tokens live 300 s; every action asks Keycloak's introspection endpoint, so a user
    disabled (or stripped of a role) is refused at the next call, not when it expires."""
    realm = api.realm
    for role, path, body, change in (
        ("trader", "/control/kill", {"target": "binance:ETH/USDT"}, "disable"),
        ("admin", "/limits", {"limits": {"max_position": "0.4"}}, "demote"),
    ):
        user = realm.add_user(role, otp=True)
        token = realm.login(user, otp=user.fresh_otp())["access_token"]
        method = "PUT" if path == "/limits" else "POST"
        assert api.call(method, path, token, json=body).status_code == 202
        before = len(_commands(kafka))
        if change == "disable":
            realm.admin.set_enabled(user.username, False)
            expected = 401
        else:
            realm.admin.remove_roles(user.username, [role])
            expected = 403
        refused = api.call(method, path, token, json=body)
        assert refused.status_code == expected, refused.text
        assert len(_commands(kafka)) == before
        # Reads still go by the signature alone (no introspection round trip).
        assert api.call("GET", "/limits", token).status_code in (200, 401, 403)


def test_viewer_reads_but_cannot_act_and_the_refusal_is_audited(api: Api, stack) -> None:
    viewer = api.token("viewer")
    assert api.call("GET", "/status", viewer).status_code == 200
    refused = api.call("POST", "/control/pause", viewer, json={"target": "*"})
    assert refused.status_code == 403
    assert "lacks the trader role" in refused.json()["detail"]
    assert api.call("PUT", "/limits", api.token("trader"),
                    json={"limits": {"max_position": "1"}}).status_code == 403
    assert api.call("POST", "/keys", viewer, json={}).status_code == 403
    denied = [r for r in _audit_file(stack) if r.action == "denied"]
    user = api.user("viewer").username
    assert {(r.actor, r.payload["path"]) for r in denied} >= {
        (user, "/api/v1/control/pause"), (user, "/api/v1/keys"),
    }
    subject = jwt.decode(viewer, options={"verify_signature": False})["sub"]
    assert all(r.payload["subject"] == subject for r in denied if r.actor == user)


# -- commands --------------------------------------------------------------------------------


def test_trader_commands_land_on_the_control_topic_keyed_and_audited(
    api: Api, kafka: KafkaConfig, stack
) -> None:
    trader = api.token("trader")
    username = api.user("trader").username
    sent = []
    for action, target in [("pause", "binance:BTC/USDT"), ("reduce", "binance"),
                           ("kill", "*"), ("resume", "*")]:
        response = api.call("POST", f"/control/{action}", trader,
                            json={"target": target, "reason": "test"})
        assert response.status_code == 202, response.json()
        body = response.json()
        assert (body["action"], body["target"], body["key"]) == (action, target,
                                                                 f"{target}:{action}")
        sent.append(body["command_id"])
    on_topic = {c.command_id: (key, c) for key, c in _commands(kafka)}
    for command_id in sent:
        key, command = on_topic[command_id]
        assert key == f"{command.target}:{command.action}".encode()
        assert command.issued_by == username and command.params == {"reason": "test"}
    audited = {r.payload["command"]["command_id"]: r for r in _audit_file(stack)
               if r.action == "control"}
    assert all(audited[c].actor == username for c in sent)


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/control/pause", {"target": "bad target"}, "body.target: String should match pattern"),
    ("/control/explode", {}, "path.action: Input should be 'pause', 'resume', 'reduce' or"),
    ("/control/pause", {"target": "*", "extra": 1}, "body.extra: Extra inputs are not"),
    ("/strategies/current", {"strategy": "glft", "params": {"gamma": -1}},
     "invalid strategy parameters: glft: gamma must be > 0"),
    ("/strategies/current", {"strategy": "nope"}, "unknown strategy 'nope'"),
    ("/strategies/current", {"strategy": "ladder", "params": {"levels": 2.5}},
     "levels must be int, got 2.5"),
])
def test_invalid_bodies_are_422_with_a_message(api: Api, path, body, message) -> None:
    method = "PUT" if path.startswith("/strategies") else "POST"
    response = api.call(method, path, api.token("trader"), json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/strategies/current", b'{"strategy": "ladder", "params": {"levels": 30000000}}',
     "levels must be <= 50"),
    ("/strategies/current", b'{"strategy": "glft", "params": {"gamma": Infinity}}',
     "gamma must be <= 1e+06, got inf"),
    ("/strategies/current", b'{"strategy": "glft", "params": {"order_size": "1e999"}}',
     "order_size must be <= 1e+09, got inf"),
    ("/strategies/current", b'{"strategy": "glft", "params": {"gamma": ' + b"9" * 400 + b"}}",
     "gamma is out of range: 400 digits"),
    ("/strategies/current", b'{"strategy": "glft", "params": {"gamma": NaN}}',
     "gamma must be > 0, got nan"),
    ("/limits", b'{"limits": {"max_open_orders": "1e1000000"}}',
     "max_open_orders is out of range"),
    ("/limits", b'{"limits": {"max_open_orders": ' + b"9" * 400 + b"}}",
     "max_open_orders is out of range: 400 digits"),
    ("/limits", b'{"limits": {"max_order_size": 1e999}}', "max_order_size must be finite"),
])
def test_out_of_range_parameters_are_refused_before_publishing(
    api: Api, kafka: KafkaConfig, path, body, message
) -> None:
    before = len(_commands(kafka))
    started = time.monotonic()
    response = api.call("PUT", path, api.token("admin"), content=body,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert time.monotonic() - started < 5  # "1e1000000" once stalled the API for 26 s
    assert len(_commands(kafka)) == before


@pytest.mark.parametrize(("path", "status"), [
    ("/pnl?venue=binance&symbol=BTC/USDT&end=0001-01-01T00:00:00", 422),
    ("/pnl?venue=binance&symbol=BTC/USDT&start=9999-12-31T23:59:59", 422),
    ("/orders?before=9223372036854775808", 422),
    ("/orders?before=-1", 422),
    ("/audit?before=99999999999999999999." + "0" * 64, 422),
    ("/orders?venue=" + "v" * 201, 422),
    ("/orders?venue=bin%00ance", 400),
    ("/audit?actor=%00", 400),
])
def test_bad_query_input_is_4xx_never_5xx_or_503(api: Api, path, status) -> None:
    response = api.call("GET", path, api.token("viewer"))
    assert response.status_code == status, response.text


def test_a_nul_in_a_command_is_refused_before_it_is_published(
    api: Api, kafka: KafkaConfig
) -> None:
    before = len(_commands(kafka))
    response = api.call("POST", "/control/kill", api.token("trader"),
                        content=rb'{"target": "binance\u0000"}',
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert len(_commands(kafka)) == before


def test_malformed_json_is_422(api: Api) -> None:
    response = api.call("POST", "/control/pause", api.token("trader"), content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "JSON decode error" in response.json()["detail"]


def test_strategy_parameters_validated_published_and_read_back(
    api: Api, kafka: KafkaConfig, stack
) -> None:
    viewer, trader = api.token("viewer"), api.token("trader")
    catalogue = {s["name"]: s for s in api.call("GET", "/strategies", viewer).json()}
    assert set(catalogue) == {"ladder", "avellaneda-stoikov", "avellaneda-stoikov-infinite",
                              "glft", "bandit", "fixed-offset"}
    gamma = next(p for p in catalogue["glft"]["params"] if p["name"] == "gamma")
    assert gamma["type"] == "float" and gamma["help"]
    assert api.call("GET", "/strategies/current", viewer).json() == {
        "target": "*", "strategy": "glft", "params": {"gamma": "0.05"}, "source": "config",
        "command_id": None, "issued_by": None, "paused": False, "acknowledged_at": None,
        "pending": None, "refused": None,
    }
    response = api.call("PUT", "/strategies/current", trader, json={
        "target": "binance:BTC/USDT", "strategy": "avellaneda-stoikov-infinite",
        "params": {"gamma": 0.2, "order_size": "0.001"},
    })
    assert response.status_code == 202, response.json()
    command_id = response.json()["command_id"]
    command = next(c for _, c in _commands(kafka) if c.command_id == command_id)
    assert command.action == "set_params"
    assert command.params == {"strategy": "avellaneda-stoikov-infinite", "gamma": "0.2",
                              "order_size": "0.001"}
    _write(stack[1], [command])  # as the persist flow stores the control topic

    # Published, not answered: the flow still runs the configuration, the change is pending.
    def current() -> dict:
        return api.call("GET", "/strategies/current", viewer,
                        params={"target": "binance:BTC/USDT"}).json()

    pending = current()
    assert (pending["source"], pending["strategy"]) == ("config", "glft")
    assert pending["pending"]["command_id"] == command_id
    assert pending["pending"]["issued_by"] == command.issued_by
    assert pending["pending"]["strategy"] == "avellaneda-stoikov-infinite"
    assert pending["pending"]["params"] == {"gamma": "0.2", "order_size": "0.001"}

    # The quote flow itself (trusting the API's key, run to the end of its input) answers on
    # control.acks, and persist stores the acks: now the change is what the flow runs.
    trusting = CommandsConfig(public_keys=(public_key_text(COMMAND_KEY.public_key()),))
    run_main(build_quote_kafka_flow(kafka, quote_options(stack[1]), tail=False,
                                    commands=trusting))
    acks = [decode(value) for _, _, value in read_topic(kafka, "control.acks")]
    ack = next(a for a in acks if a.command_id == command_id)
    assert (ack.status, ack.process, ack.issued_by) == ("applied", "quote", command.issued_by)
    _write(stack[1], acks)
    applied = current()
    assert applied["source"] == "acknowledged" and applied["command_id"] == command_id
    assert applied["issued_by"] == command.issued_by
    assert applied["strategy"] == "avellaneda-stoikov-infinite"
    assert applied["params"] == {"gamma": "0.2", "order_size": "0.001"}
    assert applied["pending"] is None and applied["acknowledged_at"]
    assert api.call("GET", "/strategies/current", viewer).json()["strategy"] == "glft"

    # A change the flow refuses (here: signed by a key it does not trust) says why, and the
    # flow's strategy stays what it acknowledged before.
    response = api.call("PUT", "/strategies/current", trader, json={
        "target": "binance:BTC/USDT", "strategy": "ladder", "params": {"levels": 2},
    })
    refused_id = response.json()["command_id"]
    second = next(c for _, c in _commands(kafka) if c.command_id == refused_id)
    distrusting = CommandGate("quote", CommandVerifier([], 30 * 10**9, 0),
                              StrategyChoice(strategy="glft"), [], time.time_ns)
    distrusting.control = control_of(ack)  # what the flow had acknowledged
    _write(stack[1], [second, *distrusting.on_event(second)])
    refused = current()
    assert refused["refused"] == {"command_id": refused_id, "issued_by": second.issued_by,
                                  "reason": "unknown_key"}
    assert refused["strategy"] == "avellaneda-stoikov-infinite" and refused["pending"] is None


def test_the_latest_suggestion_is_served_to_traders_and_applies_as_is(
    api: Api, kafka: KafkaConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What `quoteflow suggest` publishes (tests/test_suggest.py makes a real one)."""
    latest = tmp_path / "suggestion.json"
    monkeypatch.setenv(PATH_ENV, str(latest))
    trader = api.token("trader")
    missing = api.call("GET", "/strategies/suggestion", trader)
    assert missing.status_code == 404 and "quoteflow suggest" in missing.json()["detail"]
    assert api.call("GET", "/strategies/suggestion", api.token("viewer")).status_code == 403
    publish({"strategy": "glft", "params": {"gamma": "0.3"},
             "validation": {"advantage": {"pnl": 0.1, "se": 0.05}}}, latest)
    suggestion = api.call("GET", "/strategies/suggestion", trader).json()
    assert suggestion["strategy"] == "glft" and suggestion["validation"]["advantage"]["se"]
    applied = api.call("PUT", "/strategies/current", trader, json={
        "target": "binance:BTC/USDT", "strategy": suggestion["strategy"],
        "params": suggestion["params"],
    })
    assert applied.status_code == 202, applied.json()
    command_id = applied.json()["command_id"]
    command = next(c for _, c in _commands(kafka) if c.command_id == command_id)
    assert command.params == {"strategy": "glft", "gamma": "0.3"}


def test_admin_sets_limits_trader_cannot_and_bad_limits_are_422(
    api: Api, kafka: KafkaConfig, stack
) -> None:
    admin = api.token("admin")
    limits = api.call("GET", "/limits", api.token("viewer")).json()
    assert limits["defaults"]["max_position"] == "0.5"
    assert limits["instruments"] == {"binance:BTC/USDT": {"max_order_size": "0.01"}}
    for bad, message in [
        ({"max_position": -1}, "max_position must be >= 0"),
        ({"max_posittion": "1"}, "unknown risk limit 'max_posittion'"),
        ({"daily_loss_limit": True}, "daily_loss_limit must be a number"),
    ]:
        response = api.call("PUT", "/limits", admin, json={"limits": bad})
        assert response.status_code == 422
        assert response.json()["detail"].startswith("invalid limits: ")
        assert message in response.json()["detail"]
    response = api.call("PUT", "/limits", admin,
                        json={"target": "*", "limits": {"daily_loss_limit": 250.5}})
    assert response.status_code == 202
    command = next(c for _, c in _commands(kafka)
                   if c.command_id == response.json()["command_id"])
    assert (command.action, command.params) == ("set_limits", {"daily_loss_limit": "250.5"})
    _write(stack[1], [command])
    assert api.call("GET", "/limits", admin).json()["account"]["daily_loss_limit"] == "250.5"


def test_status_shows_the_risk_engines_states_and_the_last_commands(
    api: Api, stack
) -> None:
    engine = RiskEngine(parse_limits(RISK))
    pause = ControlCommand(command_id="c-pause", ts=time.time_ns(), issued_by="ops",
                           action="pause", target="binance:BTC/USDT")
    engine.on_command(pause)
    _write(stack[1], [pause, *engine.take_events()])
    scopes = {s["scope"]: s for s in api.call("GET", "/status", api.token("viewer")).json()[
        "scopes"]}
    assert scopes["*"]["state"] == "ACTIVE"
    paused = scopes["binance:BTC/USDT"]
    assert (paused["state"], paused["reason_code"]) == ("HALTED", reasons.CMD_PAUSE)
    assert paused["last_command"]["command_id"] == "c-pause"
    assert "by ops" in paused["detail"]


# -- reads -----------------------------------------------------------------------------------


def test_positions_pnl_and_orders_are_what_the_writers_stored(
    api: Api, trading_events: list
) -> None:
    viewer = api.token("viewer")
    positions = [e for e in trading_events if isinstance(e, Position)]
    last = max(positions, key=lambda p: p.ts)
    got = api.call("GET", "/positions", viewer).json()
    assert len(got) == 1
    assert (got[0]["venue"], got[0]["symbol"]) == (last.venue, last.symbol)
    assert Decimal(got[0]["quantity"]) == last.quantity
    assert Decimal(got[0]["realized_pnl"]) == last.realized_pnl
    assert isinstance(got[0]["quantity"], str)  # exact, never a float

    first = min(positions, key=lambda p: p.ts)
    bars = api.call("GET", "/pnl", viewer, params={
        "venue": last.venue, "symbol": last.symbol,
        "start": _iso(first.ts - 60 * 10**9), "end": _iso(last.ts + 60 * 10**9),
    }).json()
    assert bars and sum(b["samples"] for b in bars) == len(positions)
    assert Decimal(bars[-1]["quantity"]) == last.quantity

    orders = [e for e in trading_events if isinstance(e, OrderEvent)]
    seen: list[dict] = []
    before = None
    while True:
        params = {"limit": 1000, **({"before": before} if before else {})}
        page = api.call("GET", "/orders", viewer, params=params).json()
        seen += page["items"]
        before = page["next_before"]
        if before is None:
            break
    # Pages are cut by time: events of one nanosecond never straddle two pages here.
    assert len(seen) == len(orders) or len({o.ts for o in orders}) < len(orders)
    newest = max(orders, key=lambda o: o.ts)
    assert seen[0]["ts_ns"] == newest.ts
    one = api.call("GET", "/orders", viewer,
                   params={"client_order_id": newest.client_order_id}).json()["items"]
    assert {o["client_order_id"] for o in one} == {newest.client_order_id}
    assert api.call("GET", "/pnl", viewer, params={"venue": "x", "symbol": "y",
                    "start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}
                    ).status_code == 422


def _iso(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns // 10**9))


# -- exchange keys ---------------------------------------------------------------------------


def _second_trader(realm: TestRealm) -> str:
    user = realm.add_user("trader", otp=True)
    return realm.login(user, otp=user.fresh_otp())["access_token"]


def test_exchange_keys_are_owner_scoped_masked_tested_and_deleted(api: Api, stack) -> None:
    alice, bob = api.token("trader"), _second_trader(api.realm)
    added = api.call("POST", "/keys", alice, json={
        "exchange": "binance", "api_key": CANARY_KEY, "secret": CANARY_SECRET,
    })
    assert added.status_code == 201, added.json()
    key = added.json()
    assert key["api_key_masked"] == f"{CANARY_KEY[:4]}…{CANARY_KEY[-4:]}"
    assert api.call("GET", "/keys", alice).json() == [key]
    assert api.call("GET", "/keys", bob).json() == []
    path = f"/keys/binance/{key['key_id']}"
    for method, suffix in [("POST", "/test"), ("DELETE", "")]:
        response = api.call(method, path + suffix, bob)
        assert response.status_code == 404
        assert "no" in response.json()["detail"].lower()
    # The stand-in knows another key: the exchange refuses this one, clearly.
    tested = api.call("POST", path + "/test", alice).json()
    assert (tested["ok"], tested["outcome"]) == (False, "rejected")
    assert "Invalid API-key" in tested["detail"]

    good = api.call("POST", "/keys", bob, json={
        "exchange": "binance", "api_key": STANDIN_KEY, "secret": STANDIN_SECRET,
    }).json()
    tested = api.call("POST", f"/keys/binance/{good['key_id']}/test", bob).json()
    assert tested == {"exchange": "binance", "key_id": good["key_id"], "ok": True,
                      "outcome": "ok", "detail": "authenticated; balances in 1 currencies"}

    assert api.call("DELETE", path, alice).status_code == 204
    assert api.call("GET", "/keys", alice).json() == []
    assert api.call("DELETE", path, alice).status_code == 404
    actions = [(r.action, r.payload.get("key_id")) for r in _audit_file(stack)]
    assert ("exchange_key_added", key["key_id"]) in actions
    assert ("exchange_key_deleted", key["key_id"]) in actions
    assert ("exchange_key_tested", good["key_id"]) in actions


def test_unreachable_exchange_is_a_structured_result(api: Api) -> None:
    """Bybit's testnet, for real: no internet here, so it cannot be reached."""
    trader = api.token("trader")
    key = api.call("POST", "/keys", trader, json={
        "exchange": "bybit", "api_key": "bybitkey12345678", "secret": "bybitsecret12345",
    }).json()
    response = api.call("POST", f"/keys/bybit/{key['key_id']}/test", trader)
    assert response.status_code == 200
    result = response.json()
    assert (result["ok"], result["outcome"]) == (False, "unreachable")
    assert "bybit" in result["detail"] and "?" not in result["detail"]


@pytest.mark.parametrize(("body", "message"), [
    ({"exchange": "binanse", "api_key": "abcdefgh12", "secret": "abcdefgh12"},
     "unknown exchange id 'binanse'"),
    ({"exchange": "binance", "api_key": "abcdefgh12", "secret": " abcdefgh12"},
     "secret has leading or trailing whitespace"),
    ({"exchange": "okx", "api_key": "abcdefgh12", "secret": "abcdefgh12"},
     "password is required by okx"),
    ({"exchange": "binance", "api_key": "abcdefgh12"}, "body.secret: Field required"),
    ({"exchange": "binance", "api_key": 12345678, "secret": "abcdefgh12"},
     "body.api_key: Input should be a valid string"),
])
def test_bad_key_material_is_422_and_nothing_is_stored(api: Api, body, message) -> None:
    trader = api.token("trader")
    before = api.call("GET", "/keys", trader).json()
    response = api.call("POST", "/keys", trader, json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert api.call("GET", "/keys", trader).json() == before


# -- audit, metrics, limits on size and origin, leaks ----------------------------------------


def test_audit_trail_file_topic_and_query_agree(api: Api, kafka: KafkaConfig, stack) -> None:
    api.call("POST", "/control/pause", api.token("trader"), json={"target": "okx"})
    records = _audit_file(stack)
    assert verify_audit(stack[1].api.audit_path).ok
    on_topic = [parse_line(value + b"\n") for _, _, value in read_topic(kafka, "audit")]
    assert on_topic == records
    # The persist flow's job, done here by hand: the audit table is what the query reads.
    with connect(TimescaleConfig(dsn=stack[1].postgres.dsn)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO audit (ts, ts_ns, seq, actor, action, payload, prev_hash, hash)"
            " VALUES (to_timestamp(%s / 1e9), %s, %s, %s, %s, %s, %s, %s)",
            [(r.ts, r.ts, r.seq, r.actor, r.action, json.dumps(r.payload), r.prev_hash,
              r.hash) for r in records],
        )
    viewer = api.token("viewer")
    trader = api.user("trader").username
    seen, before = [], None
    while True:
        page = api.call("GET", "/audit", viewer, params={
            "actor": trader, "limit": 3, **({"before": before} if before else {}),
        }).json()
        seen += page["items"]
        before = page["next_before"]
        if before is None:
            break
    mine = [r for r in records if r.actor == trader]
    assert [r["hash"] for r in seen] == [r.hash for r in reversed(mine)]
    controls = api.call("GET", "/audit", viewer, params={"action": "control"}).json()["items"]
    assert controls and {r["action"] for r in controls} == {"control"}
    assert api.call("GET", "/audit", viewer, params={"before": "nonsense"}).status_code == 422


def test_metrics_count_requests_by_route_and_status_and_published_commands(api: Api) -> None:
    text = api.client.get("/metrics").text
    assert ('quoteflow_api_requests_total{method="POST",route="/api/v1/control/{action}",'
            'status="202"}') in text
    assert ('quoteflow_api_requests_total{method="GET",route="/api/v1/status",'
            'status="401"}') in text
    assert 'quoteflow_api_commands_published_total{action="pause"}' in text
    assert "quoteflow_api_request_duration_seconds_bucket" in text


def test_request_size_limit_and_cors(api: Api, stack) -> None:
    limit = stack[1].api.max_body_bytes
    response = api.call("POST", "/keys", api.token("trader"), content=b"x" * (limit + 1),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    allowed = api.call("OPTIONS", "/control/pause", headers={"Origin": ORIGIN, **preflight})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    other = api.call("OPTIONS", "/control/pause",
                     headers={"Origin": "https://evil.test", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_no_response_file_or_topic_holds_a_secret(
    api: Api, kafka: KafkaConfig, stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Runs last in the module: everything the API answered so far is scanned."""
    caplog.set_level(logging.DEBUG)
    openapi = api.call("GET", "/openapi.json")
    assert openapi.status_code == 200
    assert "HTTPBearer" in openapi.json()["components"]["securitySchemes"]
    dsn_password = "pw-" + base64.b32encode(b"never-shown").decode().lower()
    answers = b""
    # Unreachable, a `%` not escaped in the password, a `]` missing: the driver quoted the
    # last two verbatim, password and all.
    for dsn in (f"postgresql://quoteflow:{dsn_password}@127.0.0.1:9/quoteflow",
                f"postgresql://quoteflow:{dsn_password}%Zz!@127.0.0.1:9/quoteflow",
                f"postgresql://quoteflow:{dsn_password}@[::1/quoteflow"):
        leaky = Config(postgres=TimescaleConfig(dsn=dsn), keycloak=stack[1].keycloak)
        with TestClient(create_app(leaky, ApiServices.from_config(leaky, {}))) as client:
            down = client.get("/api/v1/positions",
                              headers={"Authorization": f"Bearer {api.token('viewer')}"})
            ready = client.get("/api/v1/ready")
            detailed = client.get("/api/v1/ready",
                                  headers={"Authorization": f"Bearer {api.token('admin')}"})
        assert down.status_code == 503 and ready.status_code == 503, down.text
        assert ready.json() == {"ready": False}
        assert not detailed.json()["checks"]["database"]["ok"]
        answers += down.content + ready.content + detailed.content
    bodies = [*api.recorder.bodies, answers]
    assert not scan_bytes(answers, dsn_password)
    assert dsn_password not in caplog.text
    topics = b"".join(v for name in ("control", "audit")
                      for _, _, v in read_topic(kafka, name))
    for canary in (CANARY_KEY, CANARY_SECRET, STANDIN_SECRET):
        assert not scan_bytes(b"\n".join(bodies), canary), canary
        assert not scan_bytes(topics, canary), canary
        assert not scan_paths([Path(stack[1].api.audit_path)], canary), canary
