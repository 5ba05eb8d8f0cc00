"""`quoteflow report ...`: the compliance reports (docs/compliance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quoteflow.output_paths import output_dir

report_app = typer.Typer(
    help="Compliance reports: tax lots, trades, suspicious orders.", no_args_is_help=True
)

FromOption = Annotated[
    str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC) or ISO instant.")
]
ToOption = Annotated[str, typer.Option("--to", help="Last day (inclusive) or ISO instant.")]
OutOption = Annotated[
    Path,
    typer.Option("--out", help="Directory for the CSV and JSON files.", callback=output_dir),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Read from the [postgres] database of this config."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(2)


def _period(start: str, end: str) -> tuple[int, int]:
    from quoteflow.tax_report import period

    try:
        return period(start, end)
    except ValueError as error:
        raise _fail(str(error)) from None


def _settings(config: Path | None):
    from quoteflow import logs
    from quoteflow.config import ConfigError, load_config

    try:
        settings = load_config(config)
    except ConfigError as error:
        raise _fail(f"--config: {error}") from None
    logs.from_config(settings.logging)
    return settings


def _database(settings):
    from connectors.timescale import StorageUnavailable, connect

    try:
        return connect(settings.postgres)
    except (StorageUnavailable, ValueError) as error:
        raise _fail(f"the database cannot be read: {error}") from None


@report_app.command("tax")
def tax(
    start: FromOption,
    end: ToOption,
    out: OutOption,
    method: Annotated[str, typer.Option(help="fifo, lifo, hifo or average.")] = "fifo",
    fills: Annotated[
        Path | None, typer.Option("--fills", help="A backtest's fill records (JSON lines).")
    ] = None,
    config: ConfigOption = None,
    owner: Annotated[str, typer.Option(help="Whose lots these are.")] = "default",
    account: Annotated[
        str | None, typer.Option(help="The account (default: [kafka] account, or 'default').")
    ] = None,
) -> None:
    """Tax lots and realized gains (FIFO, LIFO, HIFO, average cost), fees in the basis."""
    from connectors.venues.market_cache import instrument_for
    from models.tax_lots import METHODS, TaxLotError, tax_lots
    from quoteflow.tax_report import read_fills_file, write_tax_report

    if method not in METHODS:
        raise _fail(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    start_ns, end_ns = _period(start, end)
    if (fills is None) == (config is None):
        raise _fail("give one of --fills FILE or --config FILE")
    if fills is not None:
        try:
            records = [f for f in read_fills_file(fills) if f.ts < end_ns]
        except OSError as error:
            raise _fail(f"--fills: {fills}: {error.strerror}") from None
        except ValueError as error:
            raise _fail(str(error)) from None
        account = account or "default"
    else:
        from connectors.timescale.compliance import fills_before

        settings = _settings(config)
        account = account or settings.kafka.account
        with _database(settings) as conn:
            records = fills_before(conn, end_ns)

    def instrument(venue: str, symbol: str):
        try:
            return instrument_for(venue, symbol)
        except KeyError:
            raise TaxLotError(
                f"no market rules for {venue}:{symbol} in the markets cache"
            ) from None

    try:
        lots = tax_lots(((owner, account, f) for f in records), method, instrument)
    except TaxLotError as error:
        raise _fail(str(error)) from None
    for path in write_tax_report(lots, method, start_ns, end_ns, out):
        typer.echo(path)


@report_app.command("trades")
def trades(start: FromOption, end: ToOption, out: OutOption, config: ConfigOption = None) -> None:
    """Every order event and fill with venue and client ids, exchange and local times, the
    intent, the risk decision and who acted, from the [postgres] database."""
    from connectors.timescale.compliance import trading_records
    from quoteflow.trade_report import trade_report, write_trade_report

    start_ns, end_ns = _period(start, end)
    settings = _settings(config)
    with _database(settings) as conn:
        report = trade_report(trading_records(conn, start_ns, end_ns))
    for path in write_trade_report(report, start_ns, end_ns, out):
        typer.echo(path)


@report_app.command("suspicious")
def suspicious(
    start: FromOption, end: ToOption, out: OutOption, config: ConfigOption = None
) -> None:
    """The surveillance alerts of the window and every event of the orders they name, from
    the [postgres] database: the suspicious-order report (docs/surveillance.md)."""
    from connectors.timescale.surveillance import alerts_between, order_events_of
    from quoteflow.suspicious_report import suspicious_report, write_suspicious_report

    start_ns, end_ns = _period(start, end)
    settings = _settings(config)
    with _database(settings) as conn:
        alerts = alerts_between(conn, start_ns, end_ns)
        ids = sorted({cid for alert in alerts for cid in alert["client_order_ids"] or []})
        report = suspicious_report(alerts, order_events_of(conn, ids))
    for path in write_suspicious_report(report, start_ns, end_ns, out):
        typer.echo(path)
