"""`quoteflow report tax`: lots and realized gains (models.tax_lots) as CSV and JSON files.

Lots need every fill before the period's end (a lot bought last year is sold this year), so
all of them are booked; the report lists the disposals inside the period, the lots open at
its end, the period's totals, and for every book the reconciliation of the whole history:
Σ cash of the fills == Σ realized gains + Σ cash of the open lots (docs/compliance.md).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from models.events import Fill
from models.tax_lots import Disposal, Lot, TaxLots
from quoteflow.results import fill_from_record

DISPOSAL_COLUMNS = (
    "owner", "account", "venue", "symbol", "currency", "method", "position", "quantity",
    "acquired", "acquired_ts_ns", "disposed", "disposed_ts_ns", "holding_days", "term",
    "cost_basis", "proceeds", "gain", "acquisition_trade_id", "disposal_trade_id",
)
LOT_COLUMNS = (
    "owner", "account", "venue", "symbol", "currency", "method", "position", "quantity",
    "acquired", "acquired_ts_ns", "trade_id", "cost_basis", "proceeds",
)


def period(start: str, end: str) -> tuple[int, int]:
    """`--from`/`--to` as [start, end) in ns: a date is a whole UTC day (`--to` inclusive), a
    datetime an instant (naive means UTC). ValueError names what does not parse."""
    first, last = _instant(start, "--from", 0), _instant(end, "--to", 1)
    if last <= first:
        raise ValueError(f"--to {end} is not after --from {start}")
    return first, last


def _instant(text: str, option: str, days_after: int) -> int:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=days_after)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date (YYYY-MM-DD) or ISO datetime") from None
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def read_fills_file(path: Path) -> list[Fill]:
    """A backtest's `--fills` file; ValueError names the first line that is not a fill."""
    fills = []
    number = 0
    try:
        with path.open() as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    fills.append(fill_from_record(json.loads(line)))
                except (ValueError, KeyError, TypeError, InvalidOperation) as error:
                    raise ValueError(f"{path}:{number} is not a fill record ({error})") from None
    except UnicodeDecodeError:  # a gzip or other binary file
        raise ValueError(f"{path}:{number + 1} is not text: fill records are JSON lines") from None
    return fills


def iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).replace(
        microsecond=ts_ns % 10**9 // 1000
    ).isoformat().replace("+00:00", "Z")


def disposal_row(d: Disposal, method: str) -> dict:
    owner, account, venue, symbol = d.book
    return {
        "owner": owner, "account": account, "venue": venue, "symbol": symbol,
        "currency": d.currency, "method": method, "position": d.position,
        "quantity": d.quantity, "acquired": iso(d.acquired_ts), "acquired_ts_ns": d.acquired_ts,
        "disposed": iso(d.disposed_ts), "disposed_ts_ns": d.disposed_ts,
        "holding_days": d.holding_days, "term": d.term, "cost_basis": d.cost_basis,
        "proceeds": d.proceeds, "gain": d.gain, "acquisition_trade_id": d.acquisition_trade_id,
        "disposal_trade_id": d.disposal_trade_id,
    }


def lot_row(lot: Lot, method: str) -> dict:
    owner, account, venue, symbol = lot.book
    long = lot.quantity > 0
    return {
        "owner": owner, "account": account, "venue": venue, "symbol": symbol,
        "currency": lot.currency, "method": method, "position": "long" if long else "short",
        "quantity": abs(lot.quantity), "acquired": iso(lot.ts), "acquired_ts_ns": lot.ts,
        "trade_id": lot.trade_id, "cost_basis": -lot.cash if long else "",
        "proceeds": lot.cash if not long else "",
    }


def summarize(lots: TaxLots, start_ns: int, end_ns: int) -> dict:
    """The period's totals and the whole history's reconciliation, per book."""
    books: dict = {}

    def entry(book, currency):
        owner, account, venue, symbol = book
        return books.setdefault(book, {
            "owner": owner, "account": account, "venue": venue, "symbol": symbol,
            "currency": currency, "disposals": 0, "proceeds": Decimal(0),
            "cost_basis": Decimal(0), "gain": Decimal(0), "short_term_gain": Decimal(0),
            "long_term_gain": Decimal(0), "history_gain": Decimal(0),
            "open_lots": 0, "open_cash": Decimal(0), "cash_flow": lots.cash_flow[book],
        })

    for d in lots.disposals:
        totals = entry(d.book, d.currency)
        totals["history_gain"] += d.gain
        if start_ns <= d.disposed_ts < end_ns:
            totals["disposals"] += 1
            totals["proceeds"] += d.proceeds
            totals["cost_basis"] += d.cost_basis
            totals["gain"] += d.gain
            totals[f"{d.term}_term_gain"] += d.gain
    for lot in lots.open_lots:
        totals = entry(lot.book, lot.currency)
        totals["open_lots"] += 1
        totals["open_cash"] += lot.cash
    currencies: dict = {}
    for totals in books.values():
        totals["reconciled"] = totals["cash_flow"] == totals["history_gain"] + totals["open_cash"]
        key = (totals["owner"], totals["account"], totals["currency"])
        summed = currencies.setdefault(key, {
            "owner": key[0], "account": key[1], "currency": key[2], **dict.fromkeys(
                ("proceeds", "cost_basis", "gain", "short_term_gain", "long_term_gain"),
                Decimal(0)),
        })
        for name in ("proceeds", "cost_basis", "gain", "short_term_gain", "long_term_gain"):
            summed[name] += totals[name]
    return {"books": list(books.values()), "currencies": list(currencies.values())}


def write_tax_report(
    lots: TaxLots, method: str, start_ns: int, end_ns: int, out: Path
) -> list[Path]:
    disposals = [
        disposal_row(d, method) for d in lots.disposals if start_ns <= d.disposed_ts < end_ns
    ]
    open_lots = [lot_row(lot, method) for lot in lots.open_lots]
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        write_csv(out / "tax_disposals.csv", DISPOSAL_COLUMNS, disposals),
        write_csv(out / "tax_open_lots.csv", LOT_COLUMNS, open_lots),
    ]
    report = {
        "method": method, "from": iso(start_ns), "to": iso(end_ns),
        **summarize(lots, start_ns, end_ns), "disposals": disposals, "open_lots": open_lots,
    }
    paths.append(out / "tax_report.json")
    paths[-1].write_text(json.dumps(report, indent=2, default=str))
    return paths


def write_csv(path: Path, columns: Iterable[str], rows: list[dict]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path
