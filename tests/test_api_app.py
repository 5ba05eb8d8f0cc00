"""The control API without servers: what it decides before any outside system is asked.

The Keycloak-, Kafka- and PostgreSQL-backed behaviour is in tests/test_api.py; here the
issuer, broker and database point at closed ports, which is itself a case worth testing
(503 naming the system, never a 500, never a DSN password).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from connectors.kafka import KafkaConfig
from connectors.secrets import ExchangeCredentials
from connectors.timescale.config import TimescaleConfig
from models.flow_control import FlowControl, StrategyChoice
from models.risk import parse_limits
from quoteflow.api import create_app
from quoteflow.api.key_check import _detail, check_key
from quoteflow.api.state import (
    applied_limits,
    current_strategy,
    limits_view,
    strategy_catalogue,
    trading_status,
)
from quoteflow.config import (
    ApiConfig,
    Config,
    ConfigError,
    KeycloakConfig,
    load_config,
)
from tests.ccxt_standin import BinanceSpotStandIn

CLOSED = "127.0.0.1:9"
DSN_PASSWORD = "dsn-password-never-shown"
T = datetime(2024, 8, 8, tzinfo=UTC)


@pytest.fixture(scope="module")
def client():
    config = Config(
        kafka=KafkaConfig(bootstrap=CLOSED, connect_timeout_s=0.5),
        postgres=TimescaleConfig(dsn=f"postgresql://quoteflow:{DSN_PASSWORD}@{CLOSED}/quoteflow"),
        keycloak=KeycloakConfig(issuer=f"http://{CLOSED}/realms/quoteflow"),
        api=ApiConfig(max_body_bytes=1000, cors_origins=["https://ops.example.test"]),
    )
    with TestClient(create_app(config)) as test_client:
        yield test_client


def _signed_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": "k1"})


def test_anonymous_calls_are_401_before_the_body_is_judged(client: TestClient) -> None:
    for token in (None, "garbage"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.post("/api/v1/control/explode", json={"target": 1}, headers=headers)
        assert response.status_code == 401
        assert "target" not in response.text


def test_unreachable_keycloak_is_503_not_the_callers_fault(client: TestClient) -> None:
    response = client.get("/api/v1/status", headers={"Authorization": f"Bearer {_signed_token()}"})
    assert response.status_code == 503


def test_readiness_is_only_up_or_down_without_an_admin_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": f"Bearer {_signed_token()}"}):
        response = client.get("/api/v1/ready", headers=headers)
        assert response.status_code == 503
        assert response.json() == {"ready": False}
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_invalid_json_without_a_token_is_401_not_422(client: TestClient) -> None:
    for body in (b"{not json", b'{"target": "*"'):
        response = client.post("/api/v1/control/kill", content=body,
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 401, response.text
    response = client.put("/api/v1/limits", content=b"[", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {_signed_token()}"})
    assert response.status_code == 503  # the realm's keys cannot be fetched: judged first


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/orders?venue=bin%00ance", None),
    ("GET", "/api/v1/audit?actor=a%00", None),
    ("POST", "/api/v1/control/kill", rb'{"target": "binance\u0000"}'),
    ("POST", "/api/v1/keys", rb'{"exchange": "binance", "api_key": "k\u0000", "secret": "s"}'),
    ("PUT", "/api/v1/limits", rb'{"limits": {"max\u0000": 1}}'),
    ("POST", "/api/v1/control/kill", b'{"target": "\x00"}'),
])
def test_nul_characters_are_refused_everywhere_with_400(client, method, path, body) -> None:
    response = client.request(method, path, content=body,
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["detail"]


def test_a_backslash_u0000_in_text_is_not_a_nul(client: TestClient) -> None:
    response = client.post("/api/v1/control/kill", content=rb'{"reason": "\\u0000"}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_body_limit_refuses_declared_and_chunked_bodies(client: TestClient) -> None:
    big = b"x" * 1001
    assert client.post("/api/v1/keys", content=big).status_code == 413

    def chunks():
        yield from (b"x" * 400 for _ in range(3))

    refused = client.post("/api/v1/keys", content=chunks())
    assert refused.status_code == 413
    assert refused.json() == {"detail": "request body exceeds the limit of 1000 bytes"}
    # Within the limit the body reaches the route (which wants a token first).
    assert client.post("/api/v1/keys", content=b"{}").status_code == 401


def test_openapi_declares_bearer_auth_and_hides_key_fields(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    key_create = spec["components"]["schemas"]["KeyCreate"]["properties"]
    assert key_create["secret"]["format"] == "password"
    assert "/metrics" not in spec["paths"]


def test_metrics_label_unrouted_requests_as_one(client: TestClient) -> None:
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")
    text = client.get("/metrics").text
    assert 'route="unmatched",status="404"} 2.0' in text
    assert "/no/such" not in text


def test_cors_wildcard_is_refused_in_the_configuration() -> None:
    with pytest.raises(ConfigError, match="not '\\*'"):
        load_config(environ={"QUOTEFLOW_API__CORS_ORIGINS": '["*"]'})


# -- derived state ---------------------------------------------------------------------------


def _command(action: str, target: str, params: dict, n: int = 1) -> dict:
    return {"command_id": f"c{n}", "issued_by": "alice", "action": action, "target": target,
            "params": params, "ts": T, "ts_ns": n}


def test_limits_apply_stored_commands_in_order_and_skip_refused_ones() -> None:
    configured = parse_limits({"max_position": "1"})
    limits = applied_limits(configured, [
        _command("set_limits", "*", {"max_position": "2"}, 1),
        _command("set_limits", "*", {"max_position": "-5"}, 2),  # the engine refuses it
        _command("set_limits", "binance:BTC/USDT", {"max_order_size": "0.1"}, 3),
    ])
    view = limits_view(limits)
    assert view["defaults"]["max_position"] == "2"
    assert view["instruments"] == {"binance:BTC/USDT": {"max_order_size": "0.1"}}
    assert view["account"]["order_rate_window_ms"] == "1000"
    assert view["account"]["daily_loss_limit"] is None


def _ack(command: dict, status: str, state: FlowControl, n: int, reason: str | None = None):
    return {"process": "quote", "command_id": command["command_id"], "status": status,
            "reason": reason, "state": msgspec.to_builtins(state), "ts": T, "ts_ns": n}


def test_current_strategy_is_what_the_flow_acknowledged_with_the_change_pending() -> None:
    configured = StrategyChoice(strategy="ladder", params={"levels": "2"})
    first = _command("set_params", "*", {"strategy": "glft", "gamma": "0.2"}, 1)
    second = _command("set_params", "binance", {"strategy": "ladder"}, 2)
    third = _command("set_params", "*", {"strategy": "glft", "gamma": "0.3"}, 3)
    commands = [first, second, third]
    # Nothing answered yet: the configuration runs, and the target's latest change is pending.
    view = current_strategy("*", "ladder", {"levels": "2"}, commands, [])
    assert (view["source"], view["strategy"], view["params"]) == ("config", "ladder",
                                                                 {"levels": "2"})
    assert view["pending"]["command_id"] == "c3" and view["pending"]["params"] == {"gamma": "0.3"}
    # The flow applied the first two and refused the third.
    applied = FlowControl(configured=configured, version=2, strategies={
        "*": StrategyChoice(strategy="glft", params={"gamma": "0.2"}, command_id="c1",
                            issued_by="alice"),
        "binance": StrategyChoice(strategy="ladder", command_id="c2", issued_by="alice"),
    }, paused=["okx"])
    acks = [_ack(first, "applied", applied, 4), _ack(second, "applied", applied, 5),
            _ack(third, "refused", applied, 6, "bad_params: gamma")]
    view = current_strategy("*", "ladder", {}, commands, acks)
    assert (view["source"], view["params"], view["command_id"]) == ("acknowledged",
                                                                   {"gamma": "0.2"}, "c1")
    assert view["pending"] is None
    assert view["refused"] == {"command_id": "c3", "issued_by": "alice",
                               "reason": "bad_params: gamma"}
    # The most specific scope wins; pauses are per scope.
    assert current_strategy("binance:BTC/USDT", "x", {}, commands, acks)["strategy"] == "ladder"
    okx = current_strategy("okx", "x", {}, commands, acks)
    assert okx["paused"] and okx["strategy"] == "glft" and okx["pending"] is None
    # A replay of an applied command refused later does not unmake it.
    replayed = _ack(first, "refused", applied, 7, "replayed")
    assert current_strategy("*", "x", {}, [first], [*acks, replayed])["refused"] is None


def test_strategy_catalogue_gives_every_parameter_as_text() -> None:
    glft = next(s for s in strategy_catalogue() if s["name"] == "glft")
    assert {p["name"]: p["default"] for p in glft["params"]} == {
        "order_size": "1.0", "gamma": "0.1", "max_lots": "inf"}
    assert {p["name"]: p["bounds"] for p in glft["params"]} == {
        "order_size": "> 0, <= 1e+09", "gamma": "> 0, <= 1e+06", "max_lots": "> 0"}


def test_trading_status_merges_states_and_commands_global_first() -> None:
    states = [{"venue": "binance", "symbol": "BTC/USDT", "ts": T, "state": "HALTED",
               "reason_code": "CMD_PAUSE", "detail": "pause by alice"}]
    commands = [_command("pause", "binance:BTC/USDT", {}, 1), _command("reduce", "okx", {}, 2)]
    scopes = trading_status(states, commands)
    assert [s["scope"] for s in scopes] == ["*", "binance:BTC/USDT", "okx"]
    assert scopes[0]["state"] == "ACTIVE" and scopes[0]["last_command"] is None
    assert scopes[1]["state"] == "HALTED" and scopes[1]["last_command"]["command_id"] == "c1"
    assert scopes[2]["state"] == "ACTIVE"  # commanded, but the engine has not said so yet


# -- the key check ---------------------------------------------------------------------------


def test_key_check_against_the_binance_stand_in() -> None:
    async def run() -> list[tuple[str, str]]:
        async with BinanceSpotStandIn("key-12345678", "secret-12345678",
                                      {"USDT": Decimal(5)}) as standin:
            overrides = standin.ccxt_config()
            return [
                await check_key("binance", ExchangeCredentials("key-12345678", secret),
                                sandbox=True, timeout_s=5, overrides=overrides)
                for secret in ("secret-12345678", "wrong-secret-123")
            ]

    (ok, ok_detail), (refused, refused_detail) = asyncio.run(run())
    assert (ok, ok_detail) == ("ok", "authenticated; balances in 1 currencies")
    assert refused == "rejected"
    assert "Signature for this request is not valid" in refused_detail


def test_key_check_on_a_closed_port_is_unreachable() -> None:
    outcome, detail = asyncio.run(check_key(
        "binance", ExchangeCredentials("key-12345678", "secret-12345678"), sandbox=True,
        timeout_s=2, overrides={"urls": {"test": {"public": f"http://{CLOSED}/api/v3",
                                                  "private": f"http://{CLOSED}/api/v3"}}},
    ))
    assert outcome == "unreachable"
    assert "?" not in detail


def test_key_check_detail_blanks_key_material() -> None:
    credentials = ExchangeCredentials("key-12345678", "secret-12345678", password="pass-1")
    detail = _detail(RuntimeError("echo key-12345678 secret-12345678 pass-1 ?sig=abc"),
                     credentials)
    assert detail == "RuntimeError: echo *** *** *** "
