"""The `quoteflow` commands end to end (in-process through Typer's runner)."""

import json

import pytest
from typer.testing import CliRunner

from quoteflow.cli import app
from tests.conftest import SHARED_DATA

runner = CliRunner()
SPOT_ETH = str(SHARED_DATA / "binance/spot/ethusdt_20240808.gz")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_reports_and_draws_a_chart(tmp_path):
    result = invoke("run", "--minutes", "1", "--report", tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["events"] > 0 and summary["fills"] > 0
    assert (tmp_path / "sim_SIM-USD.png").stat().st_size > 10_000


def test_backtest_writes_the_summary_json_and_charts(tmp_path, shared_data):
    out = tmp_path / "bt.json"
    result = invoke(
        "backtest",
        "--data",
        SPOT_ETH,
        "--strategy",
        "glft",
        "--json",
        out,
        "--report",
        tmp_path / "charts",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    for key in (
        "events",
        "fills",
        "volume",
        "realized_pnl",
        "unrealized_pnl",
        "fees",
        "final_inventory",
        "max_abs_inventory",
        "markouts",
        "wall_seconds",
        "events_per_second",
    ):
        assert key in summary, key
    assert summary["events"] == summary["replay"]["lines"]
    assert list((tmp_path / "charts").glob("*.png"))


def test_simulate_writes_both_strategies(tmp_path):
    out = tmp_path / "sim.json"
    result = invoke(
        "simulate",
        "--strategy",
        "avellaneda-stoikov",
        "--gamma",
        "0.1",
        "--paths",
        "200",
        "--seed",
        "3",
        "--json",
        out,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for name in ("inventory", "symmetric"):
        assert set(data[name]) >= {
            "profit_mean",
            "profit_std",
            "final_q_mean",
            "final_q_std",
            "spread_mean",
        }


def test_replay_writes_book_lines_with_top_of_book(tmp_path, shared_data):
    out = tmp_path / "events.jsonl"
    result = invoke("replay", SPOT_ETH, "--out", out)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    deltas = [line for line in lines if line["type"] == "book_delta" and line["best_bid"]]
    assert deltas and all(float(d["best_bid"]) < float(d["best_ask"]) for d in deltas)
    assert all("seq" in d for d in deltas)


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--minutes", "0"),
        ("run", "--strategy", "no-such-model"),
        ("run", "--param", "gamma"),
        ("run", "--param", "gamma=-1"),
        ("run", "--param", "no_such_param=1"),
        ("run", "--max-inventory-lots", "lots"),
        ("simulate", "--gamma", "0"),
        ("simulate", "--paths", "0"),
        ("simulate", "--dt", "2"),
        ("simulate", "--strategy", "glft"),
        ("backtest", "--data", "/no/such/file.gz"),
        ("backtest", "--data", SPOT_ETH, "--latency-ms", "-1"),
        ("backtest", "--data", SPOT_ETH, "--order-latency-ms", "-1"),
        ("backtest", "--data", SPOT_ETH, "--cancel-latency-ms", "60001"),
        ("backtest", "--data", SPOT_ETH, "--queue-model", "fifo"),
        ("backtest", "--data", SPOT_ETH, "--queue-model", "power:-2"),
        ("backtest", "--data", SPOT_ETH, "--requote-ms", "-5"),
        ("backtest", "--data", SPOT_ETH, "--latency-file", "/no/such/latencies.csv"),
        ("run", "--queue-model", "power:x"),
        ("replay", "/no/such/file.gz", "--out", "x.jsonl"),
    ],
)
def test_invalid_parameters_exit_2_with_a_message(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output or "Error" in result.output


def test_replay_reads_cryptofeed_recordings_through_cryptofeed(tmp_path, shared_data):
    out = tmp_path / "events.jsonl"
    result = invoke("replay", SHARED_DATA / "cryptofeed/KRAKEN.ws.50.0", "--out", out)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["venue"] for line in lines} == {"kraken"}
    books = [line for line in lines if line["type"] in ("book_snapshot", "book_delta")]
    assert books and all(b["book_status"] == "applied" for b in books)
    assert all(float(b["best_bid"]) < float(b["best_ask"]) for b in books)


def test_backtest_reports_instruments_it_has_no_trading_rules_for(tmp_path, shared_data):
    out = tmp_path / "bt.json"
    result = invoke(
        "backtest",
        "--data",
        SHARED_DATA / "cryptofeed/OKX.ws.1.0",
        "--data",
        SPOT_ETH,
        "--json",
        out,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert set(summary["instruments"]) == {"binance:ETH/USDT"}
    assert summary["untraded"]["okx:BTC/USDT"]["events"] > 0
    assert "no trading rules" in summary["untraded"]["okx:BTC/USDT"]["reason"]


def test_predict_report_scores_the_model_against_baselines(tmp_path, shared_data):
    out = tmp_path / "pred.json"
    result = invoke(
        "predict-report", "--data", SPOT_ETH, "--horizon-ms", "1000", "--model", "logreg",
        "--resamples", "50", "--json", out, "--charts", tmp_path,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["results"] and list(tmp_path.glob("*.png"))


@pytest.mark.parametrize(
    "args", [("--model", "nope"), ("--horizon-ms", "1000", "--sample-ms", "300")]
)
def test_predict_report_rejects_bad_settings(args):
    result = invoke("predict-report", "--data", SPOT_ETH, *args)
    assert result.exit_code == 2, result.output


def test_audit_verify_names_the_first_broken_record(tmp_path):
    from connectors.audit_store import AuditStore

    path = tmp_path / "audit.jsonl"
    with AuditStore(path) as store:
        for n in range(3):
            store.append(n, "tester", "note", {"n": n})
    ok = invoke("audit", "verify", "--anchor", "none", path)
    assert ok.exit_code == 0 and ok.output.startswith("OK: 3 records")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[1].replace('"n":1', '"n":7') + lines[2])
    broken = invoke("audit", "verify", "--anchor", "none", path)
    assert broken.exit_code == 1 and "line 2" in broken.output


def test_schemas_command_writes_the_committed_schemas(tmp_path):
    from connectors.kafka.schemas import DEFAULT_DIR

    result = invoke("schemas", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for path in tmp_path.glob("*.json"):
        assert path.read_text() == (DEFAULT_DIR / path.name).read_text()


@pytest.mark.integration
def test_topics_command_creates_the_deployment_topics(kafka_bootstrap, tmp_path, monkeypatch):
    from tests.kafka_service import fresh_prefix, kafka_config, kafka_toml

    config = tmp_path / "quoteflow.toml"
    config.write_text(kafka_toml(kafka_config(kafka_bootstrap, prefix=fresh_prefix())))
    first = invoke("topics", "--config", config)
    assert first.exit_code == 0, first.output
    assert "md.book" in first.output.splitlines()[0]
    second = invoke("topics", "--config", config)
    assert second.exit_code == 0 and second.output.startswith("created: -")


def test_topics_command_says_when_kafka_is_unreachable(tmp_path):
    config = tmp_path / "quoteflow.toml"
    config.write_text('[kafka]\nbootstrap = "127.0.0.1:1"\nconnect_timeout_s = 1\n')
    result = invoke("topics", "--config", config)
    assert result.exit_code == 1


def test_api_command_refuses_a_bad_configuration(tmp_path):
    config = tmp_path / "quoteflow.toml"
    config.write_text('[api]\ncors_origins = ["*"]\n')
    result = invoke("api", "--config", config)
    assert result.exit_code == 2 and "cors_origins" in result.output


@pytest.mark.parametrize("line", ["rate_limit_ms = 0", "rate_limit_capacity = -1"])
def test_a_paper_request_budget_that_is_not_positive_exits_2(tmp_path, line):
    config = tmp_path / "quoteflow.toml"
    config.write_text(f"[paper]\n{line}\n")
    result = invoke("backtest", "--data", SPOT_ETH, "--config", config)
    assert result.exit_code == 2, result.output
    assert line.split()[0] in result.output and "Traceback" not in result.output


def test_the_paper_request_budget_is_configurable():
    from connectors.paper.config import PaperConfig, paper_settings
    from connectors.paper.trading import PaperSettings

    assert paper_settings(None).rate_limit_ms == PaperSettings().rate_limit_ms == 50.0
    settings = paper_settings(PaperConfig(rate_limit_ms=0.001, rate_limit_capacity=1000.0))
    assert (settings.rate_limit_ms, settings.rate_limit_capacity) == (0.001, 1000.0)


def test_a_latency_file_that_does_not_parse_exits_2_naming_the_line(tmp_path):
    path = tmp_path / "latencies.csv"
    path.write_text("ts_ns,entry_ns,cancel_ns,response_ns\n0,1000,1000,1000\n5,soon,1,1\n")
    result = invoke("backtest", "--data", SPOT_ETH, "--latency-file", str(path))
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "latencies.csv:3" in text.replace(" ", "") and "Traceback" not in text


def test_backtest_writes_one_causal_line_per_fill(tmp_path):
    fills = tmp_path / "fills.jsonl"
    result = invoke(
        "backtest", "--data", SPOT_ETH, "--strategy", "glft", "--param", "gamma=0.01",
        "--order-latency-ms", "5", "--response-latency-ms", "2", "--queue-model", "power:2",
        "--fills", str(fills), "--json", str(tmp_path / "bt.json"),
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in fills.read_text().splitlines()]
    summary = json.loads((tmp_path / "bt.json").read_text())
    assert len(lines) == summary["fills"] > 0
    for line in lines:
        assert {"instrument", "side", "price", "qty", "fee", "liquidity", "order_id", "cause",
                "cause_exchange_ts", "order_trigger_exchange_ts",
                "order_arrival_exchange_ts"} <= set(line)
        assert line["order_trigger_exchange_ts"] < line["order_arrival_exchange_ts"]
        assert line["order_arrival_exchange_ts"] < line["cause_exchange_ts"]


def _bad_inputs(tmp_path) -> dict[str, str]:
    """Files a new user could plausibly hand the commands by mistake."""
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "text.txt").write_text("hello\nnot json\n")
    (tmp_path / "binary.toml").write_bytes(bytes(range(128, 256)))
    (tmp_path / "syntax.toml").write_text("[kafka\nbootstrap = 1\n")
    (tmp_path / "section.toml").write_text("[nosuch]\na = 1\n")
    (tmp_path / "key.toml").write_text("[kafka]\nnosuch = 1\n")
    (tmp_path / "type.toml").write_text("[kafka]\nbootstrap = 5\n")
    (tmp_path / "lots.toml").write_text('[quote]\nmax_inventory_lots = "NaN"\n')
    (tmp_path / "empty.jsonl").write_text("")
    with open(SPOT_ETH, "rb") as recording:  # a download cut short
        (tmp_path / "cut.gz").write_bytes(recording.read(1000))
    (tmp_path / "closed.toml").write_text(  # nothing listens on port 1
        '[kafka]\nbootstrap = "127.0.0.1:1"\nconnect_timeout_s = 1\n'
        f'[execute]\nsymbols = ["BTC/USDT"]\naudit_path = "{tmp_path}/audit.jsonl"\n'
        '[postgres]\ndsn = "postgresql://quoteflow@127.0.0.1:1/quoteflow"\nconnect_timeout_s = 1\n'
    )
    (tmp_path / "dsn.toml").write_text('[postgres]\ndsn = "not a dsn"\n')
    (tmp_path / "port.toml").write_text("[api]\nport = 70000\n")
    return {"tmp": str(tmp_path)}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        # configuration: not a file, not text, not TOML, unknown section/key, wrong type
        (("backtest", "--data", SPOT_ETH, "--config", "{tmp}/a_dir"), "a_dir cannot be read"),
        (("topics", "--config", "{tmp}/binary.toml"), "binary.toml is not UTF-8"),
        (("backtest", "--data", SPOT_ETH, "--config", "{tmp}/syntax.toml"), "not valid TOML"),
        (("flow", "quote", "--config", "{tmp}/section.toml"), "unknown field `nosuch`"),
        (("persist", "--config", "{tmp}/key.toml"), "at `$.kafka`"),
        (("execute", "--config", "{tmp}/type.toml"), "$.kafka.bootstrap"),
        (("api", "--config", "{tmp}/port.toml"), "api.port must be 0 to 65535, got 70000"),
        (("persist", "--config", "{tmp}/dsn.toml"), "invalid PostgreSQL DSN"),
        (("backtest", "--data", SPOT_ETH, "--config", "{tmp}/none.toml"), "does not exist"),
        # outputs that cannot be written: checked before any work
        (("replay", SPOT_ETH, "--out", "{tmp}/a_dir"), "a_dir is a directory"),
        (("backtest", "--data", SPOT_ETH, "--json", "{tmp}/text.txt/bt.json"),
         "text.txt is a file"),
        (("sweep", "--data", SPOT_ETH, "--grid", "gamma=0.1", "--out", "{tmp}/text.txt"),
         "text.txt is a file"),
        (("simulate", "--json", "{tmp}/a_dir"), "a_dir is a directory"),
        (("predict-report", "--data", SPOT_ETH, "--charts", "{tmp}/text.txt"), "text.txt is a"),
        (("run", "--report", "{tmp}/text.txt"), "text.txt is a file"),
        (("flow-recovery", "{tmp}/text.txt", "-i", "0", "--processes", "1"), "text.txt is a"),
        (("report", "tax", "--from", "2024-08-08", "--to", "2024-08-09", "--out",
          "{tmp}/text.txt", "--fills", "{tmp}/text.txt"), "text.txt is a file"),
        # inputs: a directory, a missing file; malformed grids
        (("backtest", "--data", "{tmp}/a_dir"), "is a directory"),
        (("replay", "{tmp}/none.gz", "--out", "{tmp}/o.jsonl"), "does not exist"),
        (("sweep", "--data", SPOT_ETH, "--grid", "gamma"), "expected NAME=V1,V2"),
        (("sweep", "--data", SPOT_ETH, "--grid", "gamma=2..1", "--random", "2"), "LOW is above"),
        (("sweep", "--data", SPOT_ETH, "--grid", "gamma=0.1..0.2"), "needs --random"),
        (("flow", "nope"), "unknown flow 'nope'"),
        # numbers that are not: NaN and infinity pass a min= bound
        (("backtest", "--data", SPOT_ETH, "--max-inventory-lots", "nan"), "got 'nan'"),
        (("backtest", "--data", SPOT_ETH, "--requote-ms", "inf"), "requote_ms must be 0"),
        (("simulate", "--gamma", "inf"), "--gamma: must be a number > 0"),
        (("simulate", "--s0", "nan"), "--s0: must be a finite number"),
        (("flow", "quote", "--config", "{tmp}/lots.toml"), "max_inventory_lots must be > 0"),
        # audit and compliance inputs
        (("audit", "verify", "--anchor", "none", "{tmp}/none.jsonl"), "does not exist"),
        (("audit", "verify", "--anchor", "none", "{tmp}/a_dir"), "is a directory"),
        (("audit", "verify", "--anchor", "topic", "--config", "{tmp}/closed.toml",
          "{tmp}/empty.jsonl"), "the topic anchor cannot be read: cannot reach Kafka"),
        (("report", "tax", "--from", "2024-08-08", "--to", "2024-08-09", "--out", "{tmp}/tax",
          "--fills", "{tmp}/cut.gz"), "cut.gz:1 is not text"),
        (("report", "tax", "--from", "yesterday", "--to", "2024-08-09", "--out", "{tmp}/tax",
          "--fills", "{tmp}/text.txt"), "'yesterday' is not a date"),
        # recordings with no market event in them: an error, not a result of zero fills
        (("backtest", "--data", "{tmp}/text.txt", "--json", "{tmp}/bt.json"),
         "no market events to trade: {tmp}/text.txt: bad_file"),
        (("backtest", "--data", "{tmp}/cut.gz", "--json", "{tmp}/bt.json"),
         "cut.gz: bad_file: Compressed file ended"),
        (("sweep", "--data", "{tmp}/text.txt", "--grid", "gamma=0.1,0.2", "--workers", "1",
          "--out", "{tmp}/sweep"), "no market events to trade"),
    ],
)
def test_bad_input_exits_2_with_one_message_naming_it(tmp_path, args, named):
    files = _bad_inputs(tmp_path)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    result = invoke(*(arg.format(**files) for arg in args))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback: an exit, not a crash
    text = "".join(result.output.replace("│", " ").split())  # the error box wraps lines
    assert named.format(**files).replace(" ", "") in text
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == before  # no partial output


def test_a_replay_of_nothing_but_dead_letters_exits_2_and_keeps_them(tmp_path):
    files = _bad_inputs(tmp_path)
    out = tmp_path / "events.jsonl"
    result = invoke("replay", f"{files['tmp']}/cut.gz", "--out", out)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    text = "".join(result.output.replace("│", " ").split())
    assert "nomarketevents:" in text and "cut.gz:bad_file" in text
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["dead_letter"]  # marked, and nothing lost


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("flow", "quote", "--until-end"), "cannot reach Kafka at 127.0.0.1:1"),
        (("persist", "--until-end"), "cannot connect to PostgreSQL at user=quoteflow"),
        (("ingest", "replay", SPOT_ETH), "cannot reach Kafka at 127.0.0.1:1"),
        (("topics",), "cannot reach Kafka at 127.0.0.1:1"),
        (("execute", "--until-end"), "cannot reach Kafka at 127.0.0.1:1"),
        (("grafana", "provision", "--url", "http://127.0.0.1:1", "--token", "t", "--timeout",
          "1"), "cannot reach Grafana at http://127.0.0.1:1"),
    ],
)
def test_an_unreachable_server_stops_the_command_with_one_line(tmp_path, args, says):
    """Kafka at start-up, before Bytewax runs (docs/operations.md); exit 1: not a usage
    error. Nothing listens on port 1; no Grafana runs here."""
    files = _bad_inputs(tmp_path)
    result = invoke(*args, "--config", f"{files['tmp']}/closed.toml")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.output.startswith(says)
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "reads"),
    [
        (("flow", "quote", "--until-end"), "orders.events"),
        (("flow", "surveillance", "--until-end"), "orders.events"),
        (("ingest", "replay", SPOT_ETH), "md.book"),
        (("execute", "--until-end"), "orders.intents"),
    ],
)
def test_a_deployment_without_its_topics_stops_the_process_with_one_line(
    kafka_bootstrap, tmp_path, args, reads
):
    """A prefix whose topics were never created (`quoteflow topics`): named at start-up, exit
    2 (a setup error), not a Rust panic from inside a Bytewax source."""
    from tests.kafka_service import fresh_prefix, kafka_config, kafka_toml

    prefix = fresh_prefix()
    config = tmp_path / "quoteflow.toml"
    config.write_text(kafka_toml(kafka_config(kafka_bootstrap, prefix=prefix))
                      + f'[execute]\nexchange = "binance"\nsymbols = ["ETH/USDT"]\n'
                      f'audit_path = "{tmp_path / "audit.jsonl"}"\n')
    result = invoke(*args, "--config", config)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("Kafka lacks topics [")
    assert f"'{prefix}.{reads}'" in result.output and "quoteflow topics" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("backtest", "--data", "/nonexistent/recording.gz"),
         "quoteflow backtest: error: Invalid value for '--data': file "
         "'/nonexistent/recording.gz' does not exist."),
        (("backtest", "--strategy", "nosuch", "--data", str(SHARED_DATA / "binance/spot/"
                                                              "btcusdt_20240808.gz")),
         "quoteflow backtest: error: Invalid value for --strategy/--param: unknown strategy "
         "'nosuch'; known: avellaneda-stoikov, avellaneda-stoikov-infinite, bandit, "
         "fixed-offset, glft, ladder"),
        (("no-such-command",), "quoteflow: error: No such command 'no-such-command'."),
    ],
)
def test_the_console_script_prints_a_usage_error_on_one_line(args, line):
    """The installed `quoteflow` (quoteflow.cli:main), not CliRunner: Typer would box the
    message and wrap it at the terminal's width."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "quoteflow"
    done = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "60", "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stderr, done.stdout) == (2, line + "\n", "")
