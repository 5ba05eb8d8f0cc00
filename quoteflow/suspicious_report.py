"""`quoteflow report suspicious`: the surveillance alerts of a window as a suspicious-order
report (MiCA Art. 92: orders, cancellations and modifications that may be market abuse).

Writes `suspicious_alerts.csv` (one alert a row: what was measured against which threshold,
the orders involved), `suspicious_orders.csv` (every stored event and execution of those
orders, so the report stands without the database) and `suspicious_report.json` (both, with
the window and counts per kind). Read from the `surveillance_alerts`, `order_events` and
`fills` tables that `quoteflow persist` fills from the topics.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from quoteflow.tax_report import iso, write_csv

ALERT_COLUMNS = ("time", "ts_ns", "alert_id", "account", "venue", "symbol", "kind", "value",
                 "threshold", "window_s", "detail", "client_order_ids")
ORDER_COLUMNS = ("time", "ts_ns", "venue", "symbol", "client_order_id", "exchange_order_id",
                 "kind", "side", "price", "size", "filled", "trade_id", "reason", "alert_ids")


def suspicious_report(alerts: list[dict], order_events: list[dict]) -> dict[str, list[dict]]:
    """The report's rows from the stored alerts and the events of the orders they name."""
    alerts_of: dict[str, list[str]] = {}
    alert_rows = []
    for alert in alerts:
        ids = list(alert["client_order_ids"] or [])
        for cid in ids:
            alerts_of.setdefault(cid, []).append(alert["alert_id"])
        alert_rows.append({
            "time": iso(alert["ts_ns"]), "ts_ns": alert["ts_ns"], "alert_id": alert["alert_id"],
            "account": alert["account"], "venue": alert["venue"], "symbol": alert["symbol"],
            "kind": alert["kind"], "value": alert["value"], "threshold": alert["threshold"],
            "window_s": alert["window_ns"] / 1e9, "detail": alert["detail"],
            "client_order_ids": " ".join(ids),
        })
    order_rows = [
        {"time": iso(e["ts_ns"]), **{c: e.get(c) for c in ORDER_COLUMNS if c in e},
         "alert_ids": " ".join(alerts_of.get(e["client_order_id"], []))}
        for e in order_events
    ]
    return {"alerts": alert_rows, "orders": order_rows}


def write_suspicious_report(report: dict, start_ns: int, end_ns: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(out / "suspicious_alerts.csv", ALERT_COLUMNS, report["alerts"]),
             write_csv(out / "suspicious_orders.csv", ORDER_COLUMNS, report["orders"])]
    kinds = Counter(row["kind"] for row in report["alerts"])
    paths.append(out / "suspicious_report.json")
    paths[-1].write_text(json.dumps(
        {"from": iso(start_ns), "to": iso(end_ns), "alerts_by_kind": dict(sorted(kinds.items())),
         **report}, indent=2, default=str,
    ))
    return paths
