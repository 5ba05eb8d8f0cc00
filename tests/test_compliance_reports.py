"""`quoteflow report tax|trades` against a real PostgreSQL holding what a real trading session
stored: the production executor and paper venue over the start of a real recording (Binance
spot ETHUSDT, ../shared/data), a user's kill command part-way, every event and audit record
written by the real writer (connectors.timescale.EventWriter)."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.paper.trading import PaperSettings, PaperTrader, _run
from connectors.replay.recordings import Recordings
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from connectors.venues.market_cache import instrument_for
from models.audit import AuditChain
from models.events import ControlCommand, DeadLetter, Fill, OrderEvent
from models.quote_session import build_quote_session
from quoteflow.cli import app
from quoteflow.results import fill_record
from quoteflow.sessions import TradingOptions
from tests.conftest import SHARED_DATA
from tests.postgres_service import fresh_database

SPOT_ETH = SHARED_DATA / "binance/spot/ethusdt_20240808.gz"
STRATEGY = "avellaneda-stoikov-infinite"
PERIOD = ["--from", "2024-08-08", "--to", "2024-08-09"]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the API request's, in the ECS logs


class _Audit:
    def __init__(self) -> None:
        self.chain, self.records = AuditChain(), []

    def append(self, ts, actor, action, payload):
        record = self.chain.append(ts, actor, action, payload)
        self.records.append(record)
        return record


def _session() -> tuple[list, list]:
    instrument = instrument_for("binance", "ETH/USDT")
    audit = _Audit()
    trader = PaperTrader(
        build_quote_session(instrument, TradingOptions(STRATEGY).quoting()), instrument,
        PaperSettings(), audit=audit,
    )
    events = []
    for i, event in enumerate(Recordings([SPOT_ETH]).events()):
        if not isinstance(event, DeadLetter):
            events += trader.on_event(event)
        if i == 12_500:  # two quotes resting, none being cancelled: the kill cancels them
            kill = ControlCommand(command_id="cmd-1", ts=trader.venue.local_now(),
                                  issued_by="alice", action="kill", trace_id=TRACE)
            _run(trader.executor.on_command(kill))
            break
    events += trader.close()
    return events, audit.records


@pytest.fixture(scope="module")
def stored(postgres_dsn, shared_data, tmp_path_factory):
    """(config path, events, audit records) of a database holding one session."""
    events, records = _session()
    with fresh_database(postgres_dsn) as dsn:
        with connect(TimescaleConfig(dsn=dsn)) as conn:
            migrate(conn)
            writer = EventWriter(conn, TimescaleConfig(dsn=dsn))
            writer.write([*events, *records])
            writer.flush()
            assert writer.stats.rejected == 0
        config = tmp_path_factory.mktemp("config") / "quoteflow.toml"
        config.write_text(f'[postgres]\ndsn = "{dsn}"\n')
        yield config, events, records


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_tax_report_from_postgres_equals_the_one_from_the_fill_records(stored, tmp_path):
    config, events, _ = stored
    fills = [e for e in events if isinstance(e, Fill)]
    assert len(fills) > 10
    path = tmp_path / "fills.jsonl"
    path.write_text("".join(json.dumps(fill_record(f)) + "\n" for f in fills))
    for method in ("fifo", "hifo", "average"):
        from_db = invoke("report", "tax", "--method", method, *PERIOD, "--config", config,
                         "--out", tmp_path / f"db-{method}")
        from_file = invoke("report", "tax", "--method", method, *PERIOD, "--fills", path,
                           "--out", tmp_path / f"file-{method}")
        assert from_db.exit_code == 0 and from_file.exit_code == 0, from_db.output
        db, file = (json.loads((tmp_path / f"{src}-{method}/tax_report.json").read_text())
                    for src in ("db", "file"))
        assert db == file
        assert db["disposals"] and all(book["reconciled"] for book in db["books"])
        (usdt,) = db["currencies"]
        assert usdt["currency"] == "USDT" and Decimal(usdt["gain"]) == sum(
            Decimal(d["gain"]) for d in db["disposals"])
        csv = (tmp_path / f"db-{method}/tax_disposals.csv").read_text().splitlines()
        assert len(csv) == len(db["disposals"]) + 1 and csv[0].startswith("owner,account")


def test_the_trade_report_joins_every_order_and_fill_with_its_intent_risk_and_actor(
    stored, tmp_path
):
    config, events, records = stored
    result = invoke("report", "trades", *PERIOD, "--config", config, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "trades_report.json").read_text())
    orders, fills = report["orders"], report["fills"]
    stored_events = [e for e in events if isinstance(e, OrderEvent)]
    rejected = [r for r in records if r.action == "risk_decision" and not r.payload["accepted"]]
    assert Counter(o["record"] for o in orders) == {
        "order_event": len(stored_events), "risk_reject": len(rejected)}
    assert rejected and len(fills) == sum(isinstance(e, Fill) for e in events) > 10
    for row in [*orders, *fills]:
        assert row["intent_id"] and row["strategy"] == STRATEGY, row
        assert row["executor"] and row["local_ts"] and row["exchange_ts"]
    for fill in fills:
        assert fill["risk_accepted"] is True and fill["acted_by"] == f"strategy:{STRATEGY}"
        assert fill["exchange_order_id"] and fill["trade_id"]
    rejects = [o for o in orders if o["record"] == "risk_reject"]
    assert {o["risk_reason_code"] for o in rejects} == {"SELF_TRADE"}
    assert all(o["side"] in ("buy", "sell") and o["price"] for o in rejects)
    cancels = Counter((o["cancel_reason"], o["acted_by"]) for o in orders if o["kind"] == "cancel")
    assert cancels[("HALTED:CMD_KILL", "user:alice")] > 0  # the kill's cancels name the user
    for order in orders:
        by_command = order["acted_by"] == "user:alice"
        assert (order["command_id"], order["trace_id"]) == (
            ("cmd-1", TRACE) if by_command else ("", ""))
    assert cancels[("AMEND_REFUSED_BY_RISK", "risk")] > 0
    header = (tmp_path / "trades_orders.csv").read_text().splitlines()[0]
    assert header.startswith("record,exchange_ts,exchange_ts_ns,local_ts")


@pytest.mark.parametrize(("args", "message"), [
    (["tax", "--method", "fofi", *PERIOD, "--fills", "x.jsonl"], "--method"),
    (["tax", "--from", "2024-02-30", "--to", "2024-03-01", "--fills", "x.jsonl"], "--from"),
    (["tax", *PERIOD, "--fills", "missing.jsonl"], "missing.jsonl"),
    (["tax", *PERIOD], "--fills FILE or --config"),
    (["trades", "--from", "2024-08-09", "--to", "2024-08-08"], "not after"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = invoke("report", *args, "--out", tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_fill_record_that_does_not_parse_names_its_line(tmp_path):
    path = Path(tmp_path / "fills.jsonl")
    path.write_text('{"instrument": "binance:ETH/USDT", "side": "hold"}\n')
    result = invoke("report", "tax", *PERIOD, "--fills", path, "--out", tmp_path)
    assert result.exit_code == 2 and "fills.jsonl:1" in result.output
