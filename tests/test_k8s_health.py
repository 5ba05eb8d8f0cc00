"""The probes' and Prometheus' endpoint (connectors.health), its CLI wiring, and the recovery
shares of a flow cluster whose processes each have a volume of their own (`flow-recovery`)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from typer.testing import CliRunner

from connectors.health import HealthServer
from quoteflow.cli import app
from tests.kafka_service import _free_port, kafka_toml, new_deployment, principal_config

ROOT = Path(__file__).resolve().parents[1]
QUOTEFLOW = Path(sys.executable).parent / "quoteflow"  # the console script of this venv


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_server_answers_liveness_readiness_and_metrics():
    registry = CollectorRegistry()
    Counter("quoteflow_test_events", "events seen", registry=registry).inc(3)
    server = HealthServer("flow-quote", 0, host="127.0.0.1", registry=registry).start()
    try:
        assert get(server.port, "/healthz") == (200, "ok\n")
        assert get(server.port, "/readyz")[0] == 503
        server.ready()
        assert get(server.port, "/readyz") == (200, "ready\n")
        status, text = get(server.port, "/metrics")
        assert status == 200
        assert 'quoteflow_up{process="flow-quote"} 1.0' in text
        assert 'quoteflow_ready{process="flow-quote"} 1.0' in text
        assert "quoteflow_test_events_total 3.0" in text
        server.ready(False)
        assert get(server.port, "/readyz")[0] == 503
        assert get(server.port, "/nope")[0] == 404
    finally:
        server.stop()


def test_a_port_in_use_is_a_clear_usage_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["flow", "arbitrage", "--health-port", str(port), "--until-end"],
            env={"QUOTEFLOW_KAFKA__BOOTSTRAP": "127.0.0.1:1"},
        )
    assert result.exit_code == 2
    assert "cannot listen on port" in result.output


@pytest.mark.parametrize("command", [["flow"], ["execute"], ["persist"], ["ingest", "live"]])
def test_long_running_commands_take_a_health_port(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--health-port" in result.output


def start_flow(kafka_bootstrap: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """`quoteflow flow predict ARGS` as its own process, logged in as the `predict` principal
    of a fresh deployment."""
    kafka = principal_config(new_deployment(kafka_bootstrap), "predict")
    secret = tmp_path / "kafka.password"
    secret.touch(mode=0o600)
    secret.write_text(kafka.password)
    config = tmp_path / "quoteflow.toml"
    config.write_text(kafka_toml(dataclasses.replace(kafka, password=None,
                                                     password_file=str(secret))))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "flow.log"
    with log.open("w") as out:
        flow = subprocess.Popen(
            [str(QUOTEFLOW), "flow", "predict", "--config", str(config),
             "--recovery-dir", str(tmp_path / "recovery"), *args],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    return flow, log


def stop(flow: subprocess.Popen) -> None:
    flow.terminate()  # what the kubelet sends; the flow resumes from its snapshots
    try:
        flow.wait(timeout=20)
    except subprocess.TimeoutExpired:
        flow.kill()
        flow.wait()


@pytest.mark.integration
def test_a_flow_process_is_ready_and_exports_metrics(kafka_bootstrap, tmp_path):
    port = _free_port()
    flow, log = start_flow(kafka_bootstrap, tmp_path, "--health-port", str(port))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert flow.poll() is None, f"the flow ended:\n{log.read_text()[-3000:]}"
            try:
                if get(port, "/readyz")[0] == 200:
                    break
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        assert get(port, "/healthz") == (200, "ok\n")
        status, text = get(port, "/metrics")
        assert status == 200
        assert 'quoteflow_up{process="flow-predict"} 1.0' in text
        assert 'quoteflow_ready{process="flow-predict"} 1.0' in text
        assert "process_cpu_seconds_total" in text
    finally:
        stop(flow)


def test_recovery_shares_cover_every_partition_once(tmp_path):
    from flows.processes import RECOVERY_PARTITIONS

    runner = CliRunner()
    processes = 3
    found: list[str] = []
    for index in range(processes):
        directory = tmp_path / f"quote-{index}"
        result = runner.invoke(app, ["flow-recovery", str(directory), "-i", str(index),
                                     "--processes", str(processes)])
        assert result.exit_code == 0, result.output
        found += sorted(p.name for p in directory.iterdir())  # no staging directory left
    assert sorted(found) == sorted(f"part-{j}.sqlite3" for j in range(RECOVERY_PARTITIONS))
    again = runner.invoke(app, ["flow-recovery", str(tmp_path / "quote-0"), "-i", "0",
                                "--processes", str(processes)])
    assert again.exit_code == 0 and "kept" in again.output
    bad = runner.invoke(app, ["flow-recovery", str(tmp_path / "x"), "-i", "3", "--processes", "3"])
    assert bad.exit_code == 2
