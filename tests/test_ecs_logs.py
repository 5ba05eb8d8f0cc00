"""ECS JSON logs (quoteflow/logs.py) and trace ids across the API, Kafka and the executor
(connectors/trace_context.py): an API request's log line, a command published under the
request's trace on a real Kafka and signed with it, and the executor's line acting on it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from connectors.execution.executor import Executor, ExecutorConfig
from connectors.execution.rate_limiter import AsyncRateLimiter
from connectors.kafka.command_keys import CommandSigner
from connectors.paper.adapter import PaperVenueAdapter
from connectors.paper.venue import PaperVenue
from connectors.timescale.config import TimescaleConfig
from connectors.trace_context import new_trace_id, trace_id_of, traced
from connectors.venues.market_cache import instrument_for
from flows.execute import ExecutorService, ServiceConfig
from models.command_signing import CommandVerifier
from models.events import ControlCommand, decode
from models.risk import RiskEngine
from quoteflow import logs
from quoteflow.api import create_app
from quoteflow.api.services import Publisher
from quoteflow.config import Config, KafkaConfig, KeycloakConfig, LoggingConfig
from tests.kafka_service import new_deployment, read_topic

CLOSED = "127.0.0.1:9"
ECS_FIELDS = ("@timestamp", "log.level", "message", "ecs.version", "service.name",
              "process.pid", "event.dataset", "log.logger")


def get(document: dict, field: str):
    """An ECS field, dotted at the top (`log.level`, as ecs-logging writes it) or nested."""
    if field in document:
        return document[field]
    value = document
    for part in field.split("."):
        value = value[part]
    return value


@pytest.fixture
def ecs_lines():
    """Root logging as ECS into a buffer; a function returning the parsed lines so far."""
    stream = io.StringIO()
    logs.configure("ecs", dataset="quoteflow.test", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs.stop()


def test_a_line_is_an_ecs_document_with_trace_ids_and_error_fields(ecs_lines):
    log = logging.getLogger("quoteflow.test")
    trace = new_trace_id()
    with traced(trace):
        log.info("inside %s", "the trace")
    try:
        raise ValueError("broken input")
    except ValueError:
        log.exception("outside")
    inside, outside = ecs_lines()
    assert all(get(inside, field) is not None for field in ECS_FIELDS)
    assert get(inside, "log.level") == "info" and get(inside, "message") == "inside the trace"
    assert get(inside, "service.name") == "quoteflow"
    assert get(inside, "event.dataset") == "quoteflow.test"
    assert isinstance(get(inside, "process.pid"), int) and get(inside, "log.logger") == log.name
    assert get(inside, "trace.id") == trace and len(get(inside, "transaction.id")) == 16
    assert get(inside, "span.id") == get(inside, "transaction.id")
    assert "trace" not in outside
    assert get(outside, "error.type") == "ValueError"
    assert get(outside, "error.message") == "broken input"
    assert "raise ValueError" in get(outside, "error.stack_trace")


def test_the_command_line_format_wins_over_the_configuration():
    try:
        logs.start("api", "text")
        logs.from_config(LoggingConfig(format="ecs"))
        assert logs.active_format() == "text"
        logs.start("api", None)
        logs.from_config(LoggingConfig(format="ecs"))
        assert logs.active_format() == "ecs"
    finally:
        logs.stop()


def test_the_cli_option_and_the_config_section_choose_the_format(tmp_path):
    from typer.testing import CliRunner

    from quoteflow.cli import app

    config = tmp_path / "quoteflow.toml"
    config.write_text(f'[logging]\nformat = "ecs"\n[postgres]\ndsn = "postgresql://q@{CLOSED}/q"'
                      '\nconnect_timeout_s = 1\n')
    args = ["report", "trades", "--from", "2024-08-08", "--to", "2024-08-09", "--out",
            str(tmp_path), "--config", str(config)]
    try:
        for option, chosen in ((["--log-format", "text"], "text"), ([], "ecs")):
            result = CliRunner().invoke(app, [*option, *args])
            assert result.exit_code == 2 and "database" in result.output  # nothing listens
            assert logs.active_format() == chosen
        stream = io.StringIO()
        logs.configure("ecs", stream=stream)  # the dataset the command named stays
        logging.getLogger("quoteflow.test").warning("x")
        assert get(json.loads(stream.getvalue()), "event.dataset") == "quoteflow.report"
        result = CliRunner().invoke(app, ["--log-format", "xml", *args])
        assert result.exit_code == 2 and "xml" in result.output
    finally:
        logs.stop()


def test_a_traceparent_that_is_not_w3c_is_ignored():
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_of(good) == "4bf92f3577b34da6a3ce929d0e0e4736"
    for bad in (None, "", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "garbage",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"):
        assert trace_id_of(bad) is None
    with traced("not-a-trace-id; rm -rf") as trace:
        assert trace is None  # a command's id from Kafka is never logged unchecked


def test_the_api_logs_each_request_under_its_trace_and_answers_with_it(ecs_lines):
    config = Config(
        kafka=KafkaConfig(bootstrap=CLOSED, connect_timeout_s=0.5),
        postgres=TimescaleConfig(dsn=f"postgresql://quoteflow@{CLOSED}/quoteflow"),
        keycloak=KeycloakConfig(issuer=f"http://{CLOSED}/realms/quoteflow"),
    )
    given = "4bf92f3577b34da6a3ce929d0e0e4736"
    with TestClient(create_app(config)) as client:
        joined = client.get("/api/v1/health",
                            headers={"traceparent": f"00-{given}-00f067aa0ba902b7-01"})
        fresh = client.get("/api/v1/status")  # 401: logged all the same
    assert trace_id_of(joined.headers["traceparent"]) == given
    new = trace_id_of(fresh.headers["traceparent"])
    assert new and new != given
    requests = [line for line in ecs_lines() if get(line, "log.logger") == "quoteflow.api.requests"]
    assert [(get(r, "trace.id"), get(r, "url.path"), get(r, "http.response.status_code"))
            for r in requests] == [(given, "/api/v1/health", 200), (new, "/api/v1/status", 401)]
    assert get(requests[0], "http.request.method") == "GET"
    assert get(requests[0], "transaction.id") == joined.headers["traceparent"].split("-")[2]


@pytest.mark.integration
def test_a_commands_trace_reaches_the_executors_log_line_through_kafka(
    kafka_bootstrap, ecs_lines
):
    """The API's publisher on a real broker, under a request's trace; the command read back
    verifies with its trace id signed; the executor service (paper venue) acting on it logs
    under that trace. (The HTTP route needs a Keycloak token: tests/test_api.py covers it;
    here the trace is set as TraceMiddleware sets it.)"""
    kafka = new_deployment(kafka_bootstrap)
    key = Ed25519PrivateKey.generate()
    publisher = Publisher(kafka, CommandSigner(key))
    trace = new_trace_id()
    try:
        with traced(trace):
            publisher.command(ControlCommand(command_id="cmd-trace", ts=time.time_ns(),
                                             issued_by="alice", action="pause"))
    finally:
        publisher.close()
    (_, _, value), = read_topic(kafka, "control")
    command = decode(value)
    assert command.trace_id == trace
    verifier = CommandVerifier([key.public_key()], max_age_ns=60 * 10**9, max_skew_ns=10**9)
    assert verifier.refusal(command, time.time_ns()) is None  # the trace id is signed too

    instrument = instrument_for("binance", "BTC/USDT")
    paper = PaperVenue([instrument])
    adapter = PaperVenueAdapter(paper, "binance", AsyncRateLimiter.from_ccxt(0.01, capacity=100))
    executor = Executor(adapter, [instrument], RiskEngine(), emit=lambda event: None,
                        clock=time.time_ns, config=ExecutorConfig())
    service = ExecutorService(executor, ServiceConfig(poll_interval_s=0.001))

    async def scenario():
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        await service.submit(command)
        await service.drained()
        stop.set()
        await running

    asyncio.run(scenario())
    lines = ecs_lines()
    api = [line for line in lines if get(line, "log.logger") == "quoteflow.api.services"]
    acted = [line for line in lines if get(line, "log.logger") == "flows.execute"]
    assert api and get(api[0], "trace.id") == trace
    assert len(acted) == 1 and get(acted[0], "trace.id") == trace
    assert "cmd-trace" in acted[0]["message"] and get(acted[0], "event.dataset") == "quoteflow.test"
