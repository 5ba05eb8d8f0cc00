"""The `quoteflow` command line."""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models import as_paper
from quoteflow.output_paths import output_dir, output_file

app = typer.Typer(
    help="Streaming crypto market making: quotes, arbitrage signals and predictions on Bytewax.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
from quoteflow.bus_cli import bus_app  # noqa: E402

app.add_typer(bus_app, name="bus")
from quoteflow.report_cli import report_app  # noqa: E402

app.add_typer(report_app, name="report")


@app.callback()
def _main(
    ctx: typer.Context,
    log_format: Annotated[
        str | None,
        typer.Option("--log-format", help="text, or ecs: Elastic Common Schema JSON lines "
                     "(default: the config's \\[logging] format, else Python's own)."),
    ] = None,
) -> None:
    from quoteflow import logs

    try:
        logs.start(ctx.invoked_subcommand, log_format)
    except ValueError as error:
        raise _bad(str(error), "--log-format") from None


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration (QUOTEFLOW_* env overlays it)."),
]


HealthPortOption = Annotated[
    int | None,
    typer.Option(min=0, max=65535, help="Serve /healthz, /readyz and /metrics on this port."),
]


def _health(process: str, port: int | None):
    """Start the probes' and Prometheus' endpoint (connectors.health) when a port is given."""
    if port is None:
        return None
    from connectors.health import HealthServer

    try:
        return HealthServer(process, port).start()
    except OSError as error:
        raise _bad(f"cannot listen on port {port}: {error.strerror}", "--health-port") from None


def _load_config(path: Path | None):
    from quoteflow import logs
    from quoteflow.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as error:
        raise _bad(str(error), "--config") from None
    logs.from_config(config.logging)
    return config


console = Console(stderr=True)

DataOption = Annotated[
    list[Path],
    typer.Option("--data", exists=True, dir_okay=False, help="Recorded files (repeatable)."),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(file_okay=False, help="Event cache directory: decode the recordings once, "
                 "replay later runs from it (connectors/replay/event_cache.py)."),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Strategy parameter as NAME=VALUE (repeatable)."),
]


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        params[name.strip()] = value.strip()
    return params


def _bad(message: str, hint: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=hint)


def _trading_options(strategy: str, params: dict[str, str], max_inventory_lots: str, **extra):
    from models.strategies import build_strategy
    from quoteflow.sessions import TradingOptions

    try:
        build_strategy(strategy, params)
    except ValueError as error:
        raise _bad(str(error), "--strategy/--param") from None
    try:
        lots = Decimal(max_inventory_lots)
    except InvalidOperation:
        raise _bad(f"not a number: {max_inventory_lots!r}", "--max-inventory-lots") from None
    if not lots.is_finite() or lots <= 0:
        raise _bad(f"must be a positive number, got {max_inventory_lots!r}", "--max-inventory-lots")
    options = TradingOptions(strategy=strategy, params=params, max_inventory_lots=lots, **extra)
    try:
        options.quoting()  # the quote session's own checks (requote_ms)
    except ValueError as error:
        raise _bad(str(error), "--requote-ms") from None
    return options


OrderLatencyOption = Annotated[
    float | None,
    typer.Option(min=0, help="Paper venue: order-entry latency in ms (default 10)."),
]
CancelLatencyOption = Annotated[
    float | None,
    typer.Option(min=0, help="Paper venue: cancel latency in ms (default 10)."),
]
ResponseLatencyOption = Annotated[
    float | None,
    typer.Option(min=0, help="Paper venue: response latency in ms (default 10)."),
]
LatencyFileOption = Annotated[
    Path | None,
    typer.Option(
        exists=True, dir_okay=False,
        help="Paper venue: measured latencies (CSV ts_ns,entry_ns,cancel_ns,response_ns), "
        "interpolated over time; replaces the constant ones.",
    ),
]
QueueModelOption = Annotated[
    str | None,
    typer.Option(help="Paper venue queue model: risk-averse (default) or power:N."),
]
PartialFillsOption = Annotated[
    bool | None,
    typer.Option(
        "--partial-fills/--no-partial-fills",
        help="Fill by the volume that reached an order (default), or whole (hftbacktest's "
        "no-partial-fill exchange).",
    ),
]
RequoteOption = Annotated[
    float | None,
    typer.Option(min=0, help="Requote every N ms of market time (default 0: on book changes)."),
]


def _paper_settings(
    config_path: Path | None,
    order_latency_ms: float | None,
    cancel_latency_ms: float | None,
    response_latency_ms: float | None,
    latency_file: Path | None,
    queue_model: str | None,
    partial_fills: bool | None,
):
    """Flags over the config file's [paper] section over the defaults."""
    from connectors.paper.config import PaperConfigError, paper_settings

    try:
        return paper_settings(
            _load_config(config_path).paper if config_path is not None else None,
            order_latency_ms=order_latency_ms, cancel_latency_ms=cancel_latency_ms,
            response_latency_ms=response_latency_ms, latency_file=latency_file,
            queue_model=queue_model, partial_fills=partial_fills,
        )
    except PaperConfigError as error:
        raise _bad(str(error), error.hint) from None


MaxInventoryOption = Annotated[str, typer.Option(help="Position cap in order-size lots.")]

# The flags of every command that trades on the engine (run, backtest, sweep), declared once:
# `_engine_command` adds them to a command's signature.
_ENGINE_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
    for name, annotation, default in (
        ("param", ParamOption, None),
        ("max_inventory_lots", MaxInventoryOption, "10"),
        ("config", ConfigOption, None),
        ("order_latency_ms", OrderLatencyOption, None),
        ("cancel_latency_ms", CancelLatencyOption, None),
        ("response_latency_ms", ResponseLatencyOption, None),
        ("latency_file", LatencyFileOption, None),
        ("queue_model", QueueModelOption, None),
        ("partial_fills", PartialFillsOption, None),
        ("requote_ms", RequoteOption, None),
    )
]


def _engine_command(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with the engine's flags added; it receives them, with its `strategy`, as one
    dict `engine_flags` (the keyword arguments of `_engine_options`)."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
           if p.name != "engine_flags"]

    @functools.wraps(command)
    def with_flags(**kwargs):
        flags = {p.name: kwargs.pop(p.name) for p in _ENGINE_PARAMETERS}
        return command(**kwargs, engine_flags={**flags, "strategy": kwargs["strategy"]})

    with_flags.__signature__ = inspect.Signature(own + _ENGINE_PARAMETERS)
    with_flags.__annotations__ = {p.name: p.annotation for p in own + _ENGINE_PARAMETERS}
    return with_flags


def _engine_options(
    *, config: Path | None, strategy: str, param: list[str] | None, max_inventory_lots: str,
    order_latency_ms: float | None, cancel_latency_ms: float | None,
    response_latency_ms: float | None, latency_file: Path | None, queue_model: str | None,
    partial_fills: bool | None, requote_ms: float | None,
):
    """The trading options `run` and `backtest` share: strategy, risk cap, paper venue, cadence."""
    paper = _paper_settings(
        config, order_latency_ms, cancel_latency_ms, response_latency_ms, latency_file,
        queue_model, partial_fills,
    )
    return _trading_options(
        strategy, parse_params(param), max_inventory_lots, paper=paper,
        requote_ms=requote_ms or 0.0,
    )


@app.command()
@_engine_command
def run(
    seed: Annotated[int, typer.Option(help="Seed of the simulated market.")] = 7,
    minutes: Annotated[float, typer.Option(min=0.1, max=24 * 60, help="Simulated minutes.")] = 30.0,
    strategy: Annotated[str, typer.Option(help="Quoting model.")] = "avellaneda-stoikov-infinite",
    report: Annotated[
        Path, typer.Option(help="Where the chart and JSON go.", callback=output_dir)
    ] = Path("out/run"),
    fills: Annotated[
        Path | None, typer.Option(help="Write every fill as a JSON line.", callback=output_file)
    ] = None,
    *,
    engine_flags: dict,
) -> None:
    """The embedded default: simulated market + quote flow + paper venue, no servers."""
    from quoteflow.embedded import run_embedded

    options = _engine_options(**engine_flags)
    run_embedded(
        options, seed=seed, minutes=minutes, report_dir=report, console=console, fills_out=fills
    )


@app.command()
def replay(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Recorded files.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Normalized events as JSON lines.", callback=output_file),
    ],
) -> None:
    """Normalize recorded exchange traffic; book lines carry seq, best_bid and best_ask."""
    from connectors.replay.jsonl import replay_to_jsonl
    from connectors.replay.recordings import RecordingError

    try:
        stats = replay_to_jsonl(files, out)
    except RecordingError as error:
        raise _bad(str(error), "FILES") from None
    if not stats.market_events:  # only dead letters: bad input, though each is accounted for
        dead = stats.first_dead_letter
        why = f"{dead.source}: {dead.reason}" if dead else "the recordings are empty"
        raise _bad(f"no market events: {why} (the dead letters are in {out})", "FILES")
    console.print(f"wrote {out}: {json.dumps(stats.as_dict(), default=str)}")


@app.command()
@_engine_command
def backtest(
    data: DataOption,
    strategy: Annotated[str, typer.Option(help="Quoting model.")] = "avellaneda-stoikov-infinite",
    fills: Annotated[
        Path | None, typer.Option(help="Write every fill as a JSON line.", callback=output_file)
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Summary as JSON.", callback=output_file)
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Directory for the charts.", callback=output_dir)
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Events per Bytewax item.")] = 512,
    cache: CacheOption = None,
    *,
    engine_flags: dict,
) -> None:
    """Replay recordings through the quote flow, the executor and the paper venue."""
    from connectors.replay.recordings import RecordingError
    from quoteflow.backtest import run_backtest

    options = _engine_options(**engine_flags)

    try:
        summary = run_backtest(
            data, options, json_out=json_out, report_dir=report, chunk_size=chunk_size,
            console=console, fills_out=fills, cache_dir=cache,
        )
    except RecordingError as error:
        raise _bad(str(error), "--data") from None
    if json_out is None:
        typer.echo(json.dumps(summary, indent=2, default=str))
    if summary["untraded"] and not summary["instruments"]:
        # Nothing in the data could be traded: say why once, as an error.
        reason = next(iter(summary["untraded"].values()))["reason"]
        raise _bad(reason, "--data")


@app.command()
def simulate(
    strategy: Annotated[
        str, typer.Option(help="Only the paper's inventory strategy is defined here.")
    ] = ("avellaneda-stoikov"),
    gamma: Annotated[float, typer.Option(min=0, help="Risk aversion γ.")] = 0.1,
    paths: Annotated[int, typer.Option(min=1, help="Monte Carlo paths.")] = 1000,
    seed: Annotated[int, typer.Option()] = 1,
    s0: Annotated[float, typer.Option(help="Initial mid.")] = as_paper.S0,
    horizon: Annotated[float, typer.Option("--T", min=0, help="Horizon T.")] = as_paper.T,
    sigma: Annotated[float, typer.Option(min=0, help="Volatility σ.")] = as_paper.SIGMA,
    dt: Annotated[float, typer.Option(min=0, help="Time step.")] = as_paper.DT,
    k: Annotated[float, typer.Option(min=0, help="Intensity decay k.")] = as_paper.K,
    intensity: Annotated[float, typer.Option("--A", min=0, help="Intensity scale A.")] = as_paper.A,
    q0: Annotated[int, typer.Option(help="Initial inventory.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Results as JSON.", callback=output_file)
    ] = None,
) -> None:
    """Avellaneda & Stoikov (2008) section 4: inventory strategy vs the symmetric baseline."""
    from models.as_experiment import run_experiment
    from quoteflow.experiment_report import print_experiment

    if strategy != "avellaneda-stoikov":
        raise _bad(
            f"unknown strategy {strategy!r}; the experiment is defined for 'avellaneda-stoikov'",
            "--strategy",
        )
    for hint, value in (
        ("--gamma", gamma),
        ("--T", horizon),
        ("--dt", dt),
        ("--k", k),
        ("--A", intensity),
    ):
        if not 0 < value < math.inf:  # inf passes Typer's min=0 and NaN every comparison
            raise _bad(f"must be a number > 0, got {value:g}", hint)
    for hint, value in (("--s0", s0), ("--sigma", sigma)):
        if not math.isfinite(value):
            raise _bad(f"must be a finite number, got {value:g}", hint)
    if dt >= horizon:
        raise _bad(f"dt {dt} must be smaller than T {horizon}", "--dt")
    results = run_experiment(
        gamma=gamma,
        paths=paths,
        seed=seed,
        s0=s0,
        T=horizon,
        sigma=sigma,
        dt=dt,
        k=k,
        A=intensity,
        q0=q0,
    )
    print_experiment(results, gamma, console)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(results, indent=2))


@app.command("suggest")
def suggest_command(
    data: DataOption,
    out: Annotated[Path, typer.Option(help="Directory for suggestion.json and the chart.",
                                      callback=output_dir)] = Path("suggestion"),
    candidate: Annotated[
        list[str] | None,
        typer.Option(help="A candidate as STRATEGY:NAME=VALUE,... (repeatable; default grid)."),
    ] = None,
    fit_fraction: Annotated[
        float, typer.Option(min=0.1, max=0.9, help="Share of the span to choose on.")
    ] = 0.6,
    publish: Annotated[
        bool, typer.Option(help="Also publish it as the latest suggestion the API serves.")
    ] = True,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Backtest processes (default: every core).")
    ] = None,
    cache: CacheOption = None,
) -> None:
    """Choose a strategy and parameters by backtest; validate them out of sample."""
    from quoteflow.suggest import parse_grid, suggest
    from quoteflow.suggestion_store import latest_path

    try:
        grid = parse_grid(candidate) if candidate else None
        suggest(data, out_dir=out, grid=grid, fit_fraction=fit_fraction,
                publish=latest_path() if publish else None, console=console,
                workers=workers, cache_dir=cache)
    except ValueError as error:
        raise _bad(str(error), "--data/--candidate") from None


@app.command("sweep")
@_engine_command
def sweep_command(
    data: DataOption,
    grid: Annotated[
        list[str],
        typer.Option(help="A swept parameter as NAME=V1,V2,... (repeatable; the runs are the "
                     "product), or NAME=LOW..HIGH with --random."),
    ],
    strategy: Annotated[str, typer.Option(help="Quoting model.")] = "glft",
    out: Annotated[Path, typer.Option(help="Results directory; a rerun resumes it.",
                                      callback=output_dir)] = Path("out/sweep"),
    random: Annotated[
        int | None, typer.Option("--random", min=1, help="Draw N parameter sets instead.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --random draw.")] = 0,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Backtest processes (default: every core).")
    ] = None,
    cache: CacheOption = None,
    *,
    engine_flags: dict,
) -> None:
    """Backtest one strategy over a parameter grid (or a random draw) on recordings, in
    parallel; results.json, results.csv and a chart of PnL and markouts in --out."""
    from connectors.replay.recordings import RecordingError
    from quoteflow.sweep import sweep

    options = _engine_options(**engine_flags)
    try:
        sweep(strategy, grid, data, out, options, engine_flags, samples=random, seed=seed,
              workers=workers, cache_dir=cache, console=console)
    except ValueError as error:  # RecordingError included
        hint = "--data" if isinstance(error, RecordingError) else "--grid"
        raise _bad(str(error), hint) from None


@app.command("predict-report")
def predict_report_command(
    data: DataOption,
    train: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="Recordings to train on (repeatable)."),
    ] = None,
    horizon_ms: Annotated[
        list[int] | None, typer.Option(min=1, help="Horizon(s), repeatable: 100, 1000, 5000.")
    ] = None,
    sample_ms: Annotated[
        int, typer.Option(min=1, help="Sampling interval (divides the horizons).")
    ] = 100,
    model: Annotated[
        list[str] | None,
        typer.Option(help="River model(s), repeatable: logreg, logreg_interactions, amf, ..."),
    ] = None,
    resamples: Annotated[int, typer.Option(min=20, help="Block-bootstrap resamples.")] = 500,
    charts: Annotated[
        Path | None, typer.Option(help="Directory for the chart.", callback=output_dir)
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Scores as JSON.", callback=output_file)
    ] = None,
) -> None:
    """Walk-forward accuracy and log-loss of the models vs five baselines, with block SEs."""
    from models.walk_forward import MODEL_NAMES, build_forecaster
    from quoteflow.predict_report import DEFAULT_HORIZONS_MS, DEFAULT_MODELS, predict_report

    models = model or list(DEFAULT_MODELS)
    for name in models:
        try:
            build_forecaster(name, (-1, 1))
        except ValueError:
            known = ", ".join(MODEL_NAMES)
            raise _bad(f"unknown model {name!r}; known: {known} (+cal)", "--model") from None
    try:
        report = predict_report(
            data, train=train or (), horizons_ms=horizon_ms or DEFAULT_HORIZONS_MS,
            models=models, sample_ms=sample_ms, n_boot=resamples, chart_dir=charts,
            console=console,
        )
    except ValueError as error:
        raise _bad(str(error), "--data/--train/--horizon-ms/--sample-ms") from None
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2, default=str))


@audit_app.command("verify")
def audit_verify(
    file: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="An audit file (JSON lines, hash-chained).")],
    expected_head: Annotated[
        str | None, typer.Option(help="Last hash kept elsewhere: also catches a cut end.")
    ] = None,
    anchor: Annotated[
        str, typer.Option(help="Where the published chain is read: db (the [postgres] audit "
                          "table), topic (the [kafka] audit topic) or none (the file alone).")
    ] = "db",
    config: ConfigOption = None,
) -> None:
    """Check a chain and, by default, its head against what was published (a cut tail, a
    recomputed chain or an appended forgery fail); exit 1 naming the first broken record."""
    from connectors.audit_store import verify_anchored, verify_audit

    if anchor not in ("db", "topic", "none"):
        raise _bad(f"must be db, topic or none, not {anchor!r}", "--anchor")
    result = verify_audit(file, expected_head)
    if result.ok and anchor != "none":
        result = verify_anchored(file, _audit_anchor(anchor, _load_config(config)))
    typer.echo(str(result))
    if not result.ok:
        raise typer.Exit(1)


def _audit_anchor(source: str, config) -> list:
    from confluent_kafka import KafkaException

    from connectors.audit_store import database_links, topic_links
    from connectors.kafka.config import connect_admin
    from connectors.timescale import StorageUnavailable, connect

    try:
        if source == "topic":
            connect_admin(config.kafka)  # a broker that is down: said in connect_timeout_s
            return topic_links(config.kafka)
        with connect(config.postgres) as conn:
            return database_links(conn)
    except (StorageUnavailable, ValueError, OSError, RuntimeError, KafkaException) as error:
        reason = " ".join(str(error).split())
        raise _bad(f"the {source} anchor cannot be read: {reason}", "--anchor") from None


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Directory for the JSON Schemas.",
                                      callback=output_dir)] = Path("docs/schemas"),
) -> None:
    """Generate one JSON Schema per Kafka topic from the event types."""
    from connectors.kafka.schemas import write_schemas

    for path in write_schemas(out):
        typer.echo(path)


def _kafka_admin(kafka, process: str | None = None):
    """A broker that answers, checked before a Kafka process starts: refused credentials
    (exit 2) or an unreachable broker (exit 1) stop it with one line (docs/operations.md),
    not with a panic from inside a Bytewax source. Once running, outages are waited out.

    With `process` (its principal in `connectors.kafka.acls`), the topics it reads and
    writes must exist too: a deployment whose topics were never created (`quoteflow
    topics`) or another prefix is a setup error (exit 2), named before Bytewax starts."""
    from connectors.kafka.acls import BY_NAME
    from connectors.kafka.config import KafkaConfigError, KafkaUnavailable, connect_admin
    from connectors.kafka.topics import MissingTopicsError, require_topics, topic_name

    try:
        admin = connect_admin(kafka)
        if process is not None:
            principal = BY_NAME[process]
            needed = dict.fromkeys(principal.reads + principal.writes)
            require_topics(admin, [topic_name(kafka.prefix, name) for name in needed],
                           kafka.connect_timeout_s)
        return admin
    except (KafkaConfigError, KafkaUnavailable, MissingTopicsError) as error:
        console.print(str(error), style="red", soft_wrap=True, markup=False)  # one line
        raise typer.Exit(1 if isinstance(error, KafkaUnavailable) else 2) from None


def _database_reachable(postgres) -> None:
    """The database checked before persist starts, like the broker: a DSN that does not parse
    (exit 2) or a server that does not answer (exit 1) is one line, not a Bytewax panic."""
    from connectors.timescale.config import InvalidDsn, StorageUnavailable, connect

    try:
        connect(postgres).close()
    except (InvalidDsn, StorageUnavailable) as error:
        console.print(str(error), style="red", soft_wrap=True, markup=False)  # one line
        raise typer.Exit(2 if isinstance(error, InvalidDsn) else 1) from None


@app.command()
def topics(config: ConfigOption = None) -> None:
    """Create the deployment's Kafka topics that are missing; report any that differ."""
    from connectors.kafka.topics import TopicMismatchError, ensure_topics

    kafka = _load_config(config).kafka
    try:
        report = ensure_topics(_kafka_admin(kafka), kafka.prefix)
    except TopicMismatchError as error:
        console.print(str(error), style="red", soft_wrap=True, markup=False)  # one line
        raise typer.Exit(1) from None
    typer.echo(f"created: {', '.join(report.created) or '-'}")
    typer.echo(f"existing: {', '.join(report.existing) or '-'}")


@app.command()
def flow(
    name: Annotated[str, typer.Argument(help="quote, arbitrage, predict or surveillance.")],
    config: ConfigOption = None,
    workers: Annotated[int, typer.Option(min=1, help="Bytewax workers in this process.")] = 1,
    process_id: Annotated[
        int | None, typer.Option("--process-id", "-i", min=0, help="This process's index.")
    ] = None,
    addresses: Annotated[
        list[str] | None,
        typer.Option("--addresses", "-a", help="host:port of every process, in index order."),
    ] = None,
    recovery_dir: Annotated[
        Path | None, typer.Option(help="Snapshots for recovery (overrides the recovery section).")
    ] = None,
    until_end: Annotated[
        bool, typer.Option(help="Stop at the end of the input topics (replays, tests).")
    ] = False,
    health_port: HealthPortOption = None,
) -> None:
    """Run a flow on Kafka: md.* in, orders.intents, signals.arb or signals.pred out; or
    orders.events in, surveillance.alerts out (surveillance)."""
    import msgspec

    from flows.halt import FlowHalted
    from flows.processes import FLOWS, quote_options, run_flow

    if name not in FLOWS:
        raise _bad(f"unknown flow {name!r}; choose from {', '.join(FLOWS)}", "NAME")
    if (process_id is None) != (not addresses):
        raise _bad("give both or neither", "--process-id/--addresses")
    if process_id is not None and process_id >= len(addresses):
        raise _bad(f"{process_id} is not an index of the {len(addresses)} addresses", "-i")
    settings = _load_config(config)
    if recovery_dir is not None:
        recovery = msgspec.structs.replace(settings.recovery, directory=str(recovery_dir))
        settings = msgspec.structs.replace(settings, recovery=recovery)
    try:
        quote_options(settings)  # a bad strategy or limit stops here, before any Kafka work
    except ValueError as error:
        raise _bad(str(error), "--config") from None
    health = _health(f"flow-{name}", health_port)  # a usage error first, then the servers
    _kafka_admin(settings.kafka, name)
    if health is not None:
        health.ready()  # configuration checked; Bytewax connects the cluster next
    try:
        run_flow(name, settings, workers=workers, process_id=process_id, addresses=addresses,
                 tail=not until_end)
    except FlowHalted as error:  # it stopped itself, cleanly, on a known condition
        console.print(str(error), style="red", soft_wrap=True, markup=False)  # one line
        raise typer.Exit(1) from None


@app.command("flow-recovery")
def flow_recovery(
    directory: Annotated[
        Path, typer.Argument(help="This process's recovery directory.", callback=output_dir)
    ],
    process_id: Annotated[int, typer.Option("--process-id", "-i", min=0, help="Its index.")],
    processes: Annotated[int, typer.Option(min=1, help="Processes in the cluster.")],
) -> None:
    """Give a cluster process with a volume of its own its share of the recovery partitions.

    Partition j goes to process j mod N, so the cluster finds every partition exactly once
    (one directory per process: a Kubernetes StatefulSet's PVCs). A directory that already
    holds partitions is left as it is."""
    import shutil
    import tempfile

    from bytewax.recovery import init_db_dir

    from flows.processes import RECOVERY_PARTITIONS

    if process_id >= processes:
        raise _bad(f"{process_id} is not an index of {processes} processes", "-i")
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.glob("part-*.sqlite3")):
        typer.echo(f"kept: {directory} already holds recovery partitions")
        return
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=".init-"))
    try:
        init_db_dir(staging, RECOVERY_PARTITIONS)
        mine = [j for j in range(RECOVERY_PARTITIONS) if j % processes == process_id]
        for j in mine:  # a rename within one volume: the share appears whole or not at all
            (staging / f"part-{j}.sqlite3").rename(directory / f"part-{j}.sqlite3")
    finally:
        shutil.rmtree(staging)
    typer.echo(f"initialised partitions {mine} of {RECOVERY_PARTITIONS} in {directory}")


markets_app = typer.Typer(
    help="Trading rules per venue from ccxt, cached in connectors/venues/markets.",
    no_args_is_help=True,
)
app.add_typer(markets_app, name="markets")


@markets_app.command("refresh")
def markets_refresh(
    exchange: Annotated[
        list[str] | None,
        typer.Option("--exchange", "-e", help="Venue (repeatable); default: every cached one."),
    ] = None,
) -> None:
    """Fetch markets with ccxt's load_markets() from the live exchange; rewrite the cache."""
    from connectors.venues import UnknownVenueError
    from connectors.venues.market_cache import MarketsError, cached_venues, refresh_markets

    try:
        for path in refresh_markets(exchange or cached_venues()):
            console.print(f"wrote {path}")
    except (MarketsError, UnknownVenueError) as error:
        raise _bad(str(error), "--exchange") from None


ingest_app = typer.Typer(help="Normalized market data into Kafka (md.*).", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")


@ingest_app.command("replay")
def ingest_replay(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Recordings.")],
    config: ConfigOption = None,
    fresh: Annotated[
        bool, typer.Option(help="Delete what md.* hold first (needs DELETE on the topics).")
    ] = False,
) -> None:
    """Publish recordings through the live parsing path; every recorded line is accounted for.

    Once: the same recordings again publish nothing; over other data it refuses."""
    from confluent_kafka import KafkaException

    from connectors.kafka.topics import MissingTopicsError
    from connectors.replay.recordings import RecordingError
    from flows.ingest import ReplayRefused, run_ingest

    kafka = _load_config(config).kafka
    _kafka_admin(kafka, "ingest")
    try:
        stats = run_ingest("replay", kafka, paths=files, fresh=fresh)
    except (ReplayRefused, KafkaException, MissingTopicsError) as error:
        typer.echo(f"ingest replay: {error}", err=True)
        raise typer.Exit(1) from None
    except RecordingError as error:
        raise _bad(str(error), "FILES") from None
    if not stats["published"]:
        typer.echo(f"ingest replay: replay {stats['replay']} is already on md.* "
                   f"({stats['messages']} messages); nothing published", err=True)
    typer.echo(json.dumps(stats, indent=2, default=str))


@ingest_app.command("live")
def ingest_live(
    instrument: Annotated[
        list[str], typer.Option("--instrument", help="venue:BASE/QUOTE (repeatable).")
    ],
    config: ConfigOption = None,
    health_port: HealthPortOption = None,
) -> None:
    """Subscribe through cryptofeed (L2 book, trades, BBO) and publish until stopped."""
    from flows.ingest import run_ingest

    instruments: dict[str, list[str]] = {}
    for item in instrument:
        venue, sep, symbol = item.partition(":")
        if not sep or not symbol:
            raise _bad(f"expected venue:BASE/QUOTE, got {item!r}", "--instrument")
        instruments.setdefault(venue, []).append(symbol)
    health = _health("ingest", health_port)
    if health is not None:
        health.ready()
    try:
        settings = _load_config(config)
        _kafka_admin(settings.kafka, "ingest")
        run_ingest("live", settings.kafka, instruments=instruments, recovery=settings.recovery)
    except ValueError as error:
        raise _bad(str(error), "--instrument") from None


@app.command()
def persist(
    config: ConfigOption = None,
    until_end: Annotated[
        bool, typer.Option(help="Stop at the end of the topics (backfills, tests).")
    ] = False,
    health_port: HealthPortOption = None,
) -> None:
    """Every topic into PostgreSQL/TimescaleDB, exactly once (schema migrated on start)."""
    from flows.persist import run_persist

    settings = _load_config(config)
    health = _health("persist", health_port)  # a usage error first, then the servers
    _database_reachable(settings.postgres)
    _kafka_admin(settings.kafka, "persist")
    if health is not None:
        health.ready()
    run_persist(settings.kafka, settings.postgres, settings.recovery, tail=not until_end)


grafana_app = typer.Typer(help="Grafana dashboards and their provisioning.", no_args_is_help=True)
app.add_typer(grafana_app, name="grafana")


@grafana_app.command("provision")
def grafana_provision(
    url: Annotated[str, typer.Option(help="Grafana's URL, e.g. http://localhost:3000.")],
    token: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (or GRAFANA_TOKEN)."),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Basic-auth user, an Admin.")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_PASSWORD", help="Its password (or GRAFANA_PASSWORD)."),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(help="How Grafana reaches PostgreSQL (default: [postgres] dsn of --config)."),
    ] = None,
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per HTTP request.")] = 10.0,
) -> None:
    """Push the PostgreSQL datasource and every dashboard to a Grafana (grafana-client)."""
    from connectors.grafana import (
        DASHBOARDS,
        GrafanaError,
        GrafanaTarget,
        dashboard_json,
        datasource_from_dsn,
        provision,
    )

    if (token is None) == (user is None):
        raise _bad("give --token, or --user and --password", "--token/--user")
    try:
        target = GrafanaTarget(url, token=token, user=user, password=password, timeout_s=timeout)
    except ValueError as error:
        raise _bad(str(error), "--url/--user/--password") from None
    try:
        datasource = datasource_from_dsn(dsn or _load_config(config).postgres.dsn)
    except ValueError as error:
        raise _bad(str(error), "--dsn") from None
    try:
        report = provision(target, datasource, [dashboard_json(d) for d in DASHBOARDS])
    except GrafanaError as error:
        console.print(str(error), style="red", soft_wrap=True, markup=False)  # one line
        raise typer.Exit(1) from None
    typer.echo(f"datasource {datasource['uid']}: {report.datasource}")
    typer.echo(f"folder quoteflow: {report.folder}")
    typer.echo(f"dashboards: {', '.join(report.dashboards)}")


@grafana_app.command("dashboards")
def grafana_dashboards(
    out: Annotated[
        Path | None,
        typer.Option(help="Directory (default: grafana/dashboards).", callback=output_dir),
    ] = None,
) -> None:
    """Regenerate the dashboards' JSON files from connectors/grafana/dashboards.py."""
    from connectors.grafana import DASHBOARDS_DIR, write_dashboards

    for path in write_dashboards(out or DASHBOARDS_DIR):
        typer.echo(path)


@app.command()
def api(config: ConfigOption = None) -> None:
    """Serve the control API (FastAPI under uvicorn) on the api section's host and port."""
    from quoteflow.api import serve

    serve(_load_config(config))


@app.command()
def execute(
    config: ConfigOption = None,
    until_end: Annotated[
        bool, typer.Option(help="Stop at the end of the input topics (replays, tests).")
    ] = False,
    health_port: HealthPortOption = None,
) -> None:
    """The executor: orders.intents + control (+ md.* for the paper venue) → orders.events,
    risk.events, audit. Stops on SIGINT/SIGTERM after cancelling every order."""
    import dataclasses
    import signal
    import threading

    from connectors.audit_store import AuditStoreError
    from connectors.execution.keys import NoExchangeKey
    from connectors.kafka.consumer import KafkaFenced
    from connectors.secrets import SecretStoreError
    from flows.execute_kafka import run_execute
    from models.lockstep import LockstepError

    settings = _load_config(config)
    if settings.execute is None:
        raise _bad("the configuration has no [execute] section", "--config")
    health = _health("execute", health_port)  # a usage error first, then the servers
    _kafka_admin(settings.kafka, "executor")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if health is not None:
        health.ready()
    try:
        stats = run_execute(settings, until_end=until_end, stop=stop)
    except (NoExchangeKey, SecretStoreError, AuditStoreError, LockstepError,
            KafkaFenced) as error:
        console.print(str(error), style="red", soft_wrap=True, markup=False)  # one line
        raise typer.Exit(1) from None
    typer.echo(json.dumps(dataclasses.asdict(stats), indent=2))


def main() -> None:
    """The `quoteflow` console script: `app`, with a usage error as ONE line on stderr.

    Typer draws a usage error in a box that wraps a long message over several lines, after
    the usage and a help hint; an operator's log or a calling script wants the message on a
    line of its own, and the exit code (2).
    """
    import sys

    # Typer vendors click and exports only BadParameter of its exceptions.
    from typer._click import exceptions as click_errors

    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:
        error.show()  # no arguments: the help, as Typer prints it
        sys.exit(error.exit_code)
    except click_errors.ClickException as error:
        where = f"{error.ctx.command_path}: " if getattr(error, "ctx", None) else "quoteflow: "
        message = " ".join(error.format_message().split())
        print(f"{where}error: {message}", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Abort:
        print("quoteflow: aborted", file=sys.stderr)
        sys.exit(1)
    # Without standalone mode Typer returns an Exit's code, or the command's return value.
    sys.exit(code if type(code) is int else 0)
