"""`quoteflow report suspicious` on a real PostgreSQL: alerts the detectors raise on injected
wash, spoofing and layering sequences are stored by the real writer (as persist stores the
`surveillance.alerts` topic) with the order events, and the report lists each alert and every
event of the orders it names; bad input is one line and exit 2."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from quoteflow.cli import app
from tests.postgres_service import fresh_database
from tests.surveillance_cases import Orders, layering, spoof, wash

pytestmark = pytest.mark.integration

# The constructed sequences start at 2024-08-08 23:55:00 UTC (tests/surveillance_cases.py).
PERIOD = ("--from", "2024-08-08", "--to", "2024-08-08")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def stored(postgres_dsn, tmp_path_factory):
    washed, spoofed, layered = Orders("binance", "BTC/USDT"), Orders(
        "binanceusdm", "BTC/USDT:USDT"), Orders("binance", "ETH/USDT")
    wash(washed)
    spoof(spoofed, traded=True)
    layering(layered)
    cases = (washed, spoofed, layered)
    events = [e for case in cases for e in (*case.events, *case.alerts)]
    with fresh_database(postgres_dsn) as dsn:
        with connect(TimescaleConfig(dsn=dsn)) as conn:
            migrate(conn)
            writer = EventWriter(conn, TimescaleConfig(dsn=dsn))
            writer.write(events)
            writer.flush()
            assert writer.stats.rejected == 0
        config = tmp_path_factory.mktemp("config") / "quoteflow.toml"
        config.write_text(f'[postgres]\ndsn = "{dsn}"\n')
        yield config, [a for case in cases for a in case.alerts]


def test_the_report_lists_each_alert_and_every_event_of_its_orders(stored, tmp_path):
    config, alerts = stored
    result = invoke("report", "suspicious", *PERIOD, "--config", config, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    with (tmp_path / "suspicious_alerts.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert sorted((r["kind"], r["client_order_ids"]) for r in rows) == [
        ("layering", "layer0 layer1 layer2"), ("spoofing", "big"), ("wash_trade", "b s")]
    assert {r["alert_id"] for r in rows} == {a.alert_id for a in alerts}
    with (tmp_path / "suspicious_orders.csv").open() as file:
        orders = list(csv.DictReader(file))
    big = [(o["kind"], o["alert_ids"] != "") for o in orders if o["client_order_id"] == "big"]
    assert big == [("ack", True), ("cancel", True)]
    washed = [(o["client_order_id"], o["kind"], o["trade_id"]) for o in orders
              if o["kind"] == "execution"]
    assert ("b", "execution", "t1") in washed and ("s", "execution", "t1") in washed
    summary = json.loads((tmp_path / "suspicious_report.json").read_text())
    assert summary["alerts_by_kind"] == {"layering": 1, "spoofing": 1, "wash_trade": 1}


def test_a_window_without_alerts_gives_empty_files(stored, tmp_path):
    config, _ = stored
    result = invoke("report", "suspicious", "--from", "2024-08-01", "--to", "2024-08-02",
                    "--config", config, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "suspicious_alerts.csv").read_text().count("\n") == 1  # the header


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = invoke("report", "suspicious", "--from", "2024-08-09", "--to", "2024-08-08",
                    "--out", tmp_path)
    assert result.exit_code == 2, result.output
    assert "not after" in result.output and len(result.output.strip().splitlines()) == 1
