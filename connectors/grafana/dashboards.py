"""quoteflow's Grafana dashboards as code; `write_dashboards` renders them to JSON files.

The SQL reads the tables and views of `connectors/timescale/schema.py` (docs/storage.md)
and runs unchanged on TimescaleDB and on plain PostgreSQL. Conventions, so every panel reads
the same way:
- time series group by `$__timeGroupAlias(ts, $__interval)` and name their series with a
  text `metric` column (`venue symbol`, plus a side, horizon or reason where it splits);
- `$venue` and `$symbol` are multi-value variables, used as `IN ($venue)`;
- no SQL comments: Grafana versions differ in how they treat them before expanding macros.
The committed files in grafana/dashboards/ are checked against this module by the tests;
regenerate them with `quoteflow grafana dashboards`.
"""

from __future__ import annotations

import json
from pathlib import Path

from connectors.grafana.model import Dashboard, Panel, ValueText, Variable, dashboard_json

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"

_INSTRUMENT = "venue || ' ' || symbol"
_IN_SELECTION = "venue IN ($venue) AND symbol IN ($symbol)"

VARIABLES = (
    Variable("venue", "Venue",
             "SELECT DISTINCT venue FROM md_bbo WHERE $__timeFilter(ts) ORDER BY 1"),
    Variable("symbol", "Symbol",
             "SELECT DISTINCT symbol FROM md_bbo WHERE $__timeFilter(ts) AND venue IN ($venue)"
             " ORDER BY 1"),
)


def _series(values: str, table: str, *, metric: str = _INSTRUMENT,
            where: str = _IN_SELECTION) -> str:
    """The common time series: `values` aggregated per interval and per `metric`."""
    return (
        f"SELECT $__timeGroupAlias(ts, $__interval), {metric} AS metric,\n  {values}\n"
        f"FROM {table}\nWHERE $__timeFilter(ts) AND {where}\nGROUP BY 1, 2\nORDER BY 1, 2"
    )


def _last_per_interval(values: str, table: str) -> str:
    """The last sample of each interval and instrument (positions are levels, not flows)."""
    return (
        f"SELECT * FROM (\n"
        f"  SELECT DISTINCT ON (1, 2) $__timeGroupAlias(ts, $__interval),"
        f" {_INSTRUMENT} AS metric,\n    {values}\n"
        f"  FROM {table}\n  WHERE $__timeFilter(ts) AND {_IN_SELECTION}\n"
        f"  ORDER BY 1, 2, ts_ns DESC\n) AS last_in_interval\nORDER BY 1, 2"
    )


_MID = "(bid_price + ask_price) / 2"

MARKET = Dashboard(
    uid="quoteflow-market",
    title="quoteflow / Market",
    description="Market data as the venues sent it: top of book, depth and public trades.",
    variables=VARIABLES,
    panels=(
        Panel("Mid price", _series(f"avg({_MID}) AS mid", "md_bbo"), ("time", "metric", "mid"),
              description="Mean of the best bid/ask mid over each interval (md_bbo)."),
        Panel("Spread",
              _series(f"avg((ask_price - bid_price) / NULLIF({_MID}, 0) * 10000) AS spread_bps",
                      "md_bbo"),
              ("time", "metric", "spread_bps"), unit="bps",
              description="Best ask minus best bid, in basis points of the mid."),
        Panel("Depth in the best 10 levels",
              _series("avg(bid_depth) AS bid_depth, avg(ask_depth) AS ask_depth",
                      "md_book_top", where=f"{_IN_SELECTION} AND bid_depth IS NOT NULL"),
              ("time", "metric", "bid_depth", "ask_depth"),
              description="Resting size (base units) in the best 10 levels of the local L2 "
                          "book, while it is in sync with the venue."),
        Panel("Trade volume by taker side",
              _series("sum(size) AS volume", "md_trades", metric=f"{_INSTRUMENT} || ' ' || side"),
              ("time", "metric", "volume"), kind="bars",
              description="Public trades: base volume per interval, by the taker's side."),
        Panel("1-minute bars",
              "SELECT bucket AS \"time\", venue, symbol, open, high, low, close, volume, trades\n"
              f"FROM md_ohlcv_1m\nWHERE $__timeFilter(bucket) AND {_IN_SELECTION}\n"
              "ORDER BY bucket DESC, venue, symbol",
              ("time", "venue", "symbol", "open", "high", "low", "close", "volume", "trades"),
              kind="table",
              description="OHLCV from public trades by exchange time (md_ohlcv_1m)."),
    ),
)

# Markouts as docs/pnl.md defines them: the first mid at or after fill time + horizon, signed
# so that a positive markout was good for us. One pass over the range's BBOs instead of a
# lookup per fill (md_bbo has a BRIN index, which cannot find one row fast): fills' due times
# and mids in one timeline per instrument, read backwards; the running count of mids puts
# each due time in the group of the first mid at or after it (ties: the first received).
_MARKOUTS = f"""WITH due AS (
  SELECT f.venue, f.symbol, f.ts AS fill_ts, f.side, f.price, h.label, f.ts + h.horizon AS at
  FROM fills AS f
  CROSS JOIN (VALUES ('1s', interval '1 second'), ('5s', interval '5 seconds'),
    ('30s', interval '30 seconds')) AS h (label, horizon)
  WHERE $__timeFilter(f.ts) AND f.venue IN ($venue) AND f.symbol IN ($symbol)
),
timeline AS (
  SELECT venue, symbol, ts AS at, receive_ts_ns AS tiebreak, 0 AS is_due, {_MID} AS mid,
    NULL::timestamptz AS fill_ts, NULL::text AS side, NULL::numeric AS price, NULL::text AS label
  FROM md_bbo
  WHERE ts >= $__timeFrom() AND ts <= $__timeTo()::timestamptz + interval '90 seconds'
    AND {_IN_SELECTION}
  UNION ALL
  SELECT venue, symbol, at, NULL, 1, NULL, fill_ts, side, price, label FROM due
),
grouped AS (
  SELECT *, count(mid) OVER (PARTITION BY venue, symbol
    ORDER BY at DESC, is_due, tiebreak DESC ROWS UNBOUNDED PRECEDING) AS mid_group
  FROM timeline
),
resolved AS (
  SELECT *, first_value(mid) OVER (PARTITION BY venue, symbol, mid_group
    ORDER BY at DESC, is_due, tiebreak DESC ROWS UNBOUNDED PRECEDING) AS next_mid
  FROM grouped
)
SELECT $__timeGroupAlias(fill_ts, $__interval), venue || ' ' || symbol || ' ' || label AS metric,
  avg(CASE WHEN side = 'buy' THEN 1 ELSE -1 END * (next_mid - price) / price * 10000)
    AS markout_bps
FROM resolved
WHERE is_due = 1 AND next_mid IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2"""

MARKET_MAKING = Dashboard(
    uid="quoteflow-market-making",
    title="quoteflow / Market making",
    description="Our quotes, inventory, PnL, fills and markouts (docs/pnl.md).",
    variables=VARIABLES,
    panels=(
        Panel("Quotes vs mid",
              _series("avg(reference_mid) AS mid, avg(bid_prices[1]) AS best_bid,"
                      " avg(ask_prices[1]) AS best_ask", "order_intents"),
              ("time", "metric", "mid", "best_bid", "best_ask"),
              description="Our best desired bid and ask against the mid they were priced "
                          "from (order_intents)."),
        Panel("Strategy and bandit arm in use",
              _series("count(*) AS intents", "order_intents",
                      metric=f"{_INSTRUMENT} || ' ' || strategy"),
              ("time", "metric", "intents"), kind="bars",
              description="Desired states per interval by the strategy that made them; the "
                          "bandit strategy names the arm it chose (bandit#N, docs/strategies.md), "
                          "so this shows its choices window by window."),
        Panel("Inventory", _last_per_interval("quantity AS inventory", "positions"),
              ("time", "metric", "inventory"),
              description="Signed position in base units, last sample of each interval."),
        Panel("PnL",
              _last_per_interval("realized_pnl, unrealized_pnl, fees,"
                                 " realized_pnl + unrealized_pnl - fees AS net_pnl", "positions"),
              ("time", "metric", "realized_pnl", "unrealized_pnl", "fees", "net_pnl"),
              description="Quote currency. Net = realized + unrealized - fees; a fee below "
                          "zero is a rebate."),
        Panel("Filled volume by side",
              _series("sum(size) AS filled", "fills", metric=f"{_INSTRUMENT} || ' ' || side"),
              ("time", "metric", "filled"), kind="bars",
              description="Our executions, base volume per interval."),
        Panel("Markouts", _MARKOUTS, ("time", "metric", "markout_bps"), unit="bps",
              description="Mean mid move after our fills at 1 s, 5 s and 30 s, in basis "
                          "points of the fill price; positive is good for us. Mids are read "
                          "up to 90 s past the range, so the last fills resolve too."),
        Panel("Fills",
              "SELECT ts AS \"time\", venue, symbol, side, price, size, fee, liquidity,"
              " client_order_id\n"
              f"FROM fills\nWHERE $__timeFilter(ts) AND {_IN_SELECTION}\n"
              "ORDER BY ts_ns DESC\nLIMIT 500",
              ("time", "venue", "symbol", "side", "price", "size", "fee", "liquidity",
               "client_order_id"),
              kind="table", description="The latest 500 fills in the range."),
    ),
)

_PAIR = "buy_venue || ':' || buy_symbol || ' -> ' || sell_venue || ':' || sell_symbol"
_PAIR_IN_SELECTION = (
    "(buy_venue IN ($venue) OR sell_venue IN ($venue))"
    " AND (buy_symbol IN ($symbol) OR sell_symbol IN ($symbol))"
)

ARBITRAGE = Dashboard(
    uid="quoteflow-arbitrage",
    title="quoteflow / Arbitrage",
    description="Cross-venue and spot-perpetual edges from the arbitrage flow (signals.arb).",
    variables=VARIABLES,
    panels=(
        Panel("Edge by venue pair",
              _series("max(gross_edge_bps) AS gross_edge_bps, max(net_edge_bps) AS net_edge_bps",
                      "arb_signals", metric=_PAIR, where=_PAIR_IN_SELECTION),
              ("time", "metric", "gross_edge_bps", "net_edge_bps"), unit="bps",
              description="Best edge per interval of buying on one leg and selling on the "
                          "other, before and after both legs' taker fees."),
        Panel("Oldest leg",
              _series("max(greatest(buy_age_ns, sell_age_ns)) / 1e6 AS oldest_leg_ms",
                      "arb_signals", metric=_PAIR, where=_PAIR_IN_SELECTION),
              ("time", "metric", "oldest_leg_ms"), unit="ms",
              description="Age of the staler quote behind a signal: edges on old quotes are "
                          "not there to take."),
        Panel("Pairs",
              "SELECT kind, buy_venue, buy_symbol, sell_venue, sell_symbol,"
              " count(*) AS signals,\n"
              "  count(*) FILTER (WHERE net_edge_bps > 0) AS profitable,"
              " max(net_edge_bps) AS best_net_edge_bps,\n"
              "  avg(net_edge_bps) AS mean_net_edge_bps, max(ts) AS last_seen\n"
              f"FROM arb_signals\nWHERE $__timeFilter(ts) AND {_PAIR_IN_SELECTION}\n"
              "GROUP BY 1, 2, 3, 4, 5\nORDER BY best_net_edge_bps DESC",
              ("kind", "buy_venue", "buy_symbol", "sell_venue", "sell_symbol", "signals",
               "profitable", "best_net_edge_bps", "mean_net_edge_bps", "last_seen"),
              kind="table", description="Signals per direction; profitable = net edge > 0."),
    ),
)

_MODEL = f"{_INSTRUMENT} || ' ' || model"
_SCORED = f"{_IN_SELECTION} AND rolling_accuracy IS NOT NULL"

MODELS = Dashboard(
    uid="quoteflow-models",
    title="quoteflow / Models",
    description="Online direction predictions (signals.pred) scored against a baseline.",
    variables=VARIABLES,
    panels=(
        Panel("Accuracy vs baseline",
              _series("avg(rolling_accuracy) AS accuracy, avg(baseline_accuracy) AS baseline",
                      "predictions", metric=_MODEL, where=_SCORED),
              ("time", "metric", "accuracy", "baseline"), unit="percentunit",
              description="Rolling hit rate of the model and of the baseline over the same "
                          "settled horizons (docs/predictions.md)."),
        Panel("Lift over baseline",
              _series("avg(rolling_accuracy - baseline_accuracy) AS lift", "predictions",
                      metric=_MODEL, where=_SCORED),
              ("time", "metric", "lift"), unit="percentunit",
              description="Accuracy minus baseline accuracy: above zero the model adds "
                          "something."),
        Panel("Rolling log loss",
              _series("avg(rolling_log_loss) AS log_loss", "predictions", metric=_MODEL,
                      where=f"{_IN_SELECTION} AND rolling_log_loss IS NOT NULL"),
              ("time", "metric", "log_loss"),
              description="Lower is better; ln 2 = 0.693 is a coin flip."),
        Panel("Latest scores",
              "SELECT DISTINCT ON (venue, symbol, model) ts AS \"time\", venue, symbol, model,\n"
              "  horizon_ns / 1e6 AS horizon_ms, rolling_accuracy AS accuracy,"
              " baseline_accuracy AS baseline,\n  rolling_log_loss AS log_loss\n"
              f"FROM predictions\nWHERE $__timeFilter(ts) AND {_SCORED}\n"
              "ORDER BY venue, symbol, model, ts_ns DESC",
              ("time", "venue", "symbol", "model", "horizon_ms", "accuracy", "baseline",
               "log_loss"),
              kind="table", description="Each model's last scores in the range."),
    ),
)

_TRADING_STATES = (
    ValueText(0, "ACTIVE", "green"),
    ValueText(1, "REDUCING", "orange"),
    ValueText(2, "HALTED", "red"),
)
# One row per risk scope (`*`, a venue, or venue:symbol), starting from the state each scope
# was in when the range begins, so a halt from before the range still shows.
_TRADING_STATE = """WITH scoped AS (
  SELECT ts, ts_ns, coalesce(venue || coalesce(':' || symbol, ''), '*') AS scope,
    CASE state WHEN 'ACTIVE' THEN 0 WHEN 'REDUCING' THEN 1 ELSE 2 END AS level
  FROM risk_events
  WHERE ts <= $__timeTo() AND (venue IS NULL OR venue IN ($venue))
)
SELECT * FROM (
  SELECT DISTINCT ON (scope) $__timeFrom()::timestamptz AS "time", scope AS metric,
    level AS state
  FROM scoped
  WHERE ts < $__timeFrom()
  ORDER BY scope, ts_ns DESC
) AS before_range
UNION ALL
SELECT ts, scope, level FROM scoped WHERE ts >= $__timeFrom()
ORDER BY 1, 2"""

# Limits live in the configuration; the ones operators set later are in control_commands.
# A command counts once the risk engine accepted it (its limit_change event names it).
_POSITION_LIMIT_USAGE = """SELECT $__timeGroupAlias(p.ts, $__interval),
  p.venue || ' ' || p.symbol AS metric,
  max(abs(p.quantity) / NULLIF(l.max_position, 0)) AS max_position_used
FROM positions AS p
CROSS JOIN LATERAL (
  SELECT (c.params ->> 'max_position')::numeric AS max_position
  FROM control_commands AS c
  WHERE c.action = 'set_limits' AND c.params ->> 'max_position' IS NOT NULL
    AND c.target IN (p.venue || ':' || p.symbol, '*') AND c.ts_ns <= p.ts_ns
    AND EXISTS (
      SELECT 1 FROM risk_events AS r
      WHERE r.kind = 'limit_change' AND r.ts_ns = c.ts_ns
        AND strpos(r.detail, '(command ' || c.command_id || ')') > 0
    )
  ORDER BY c.target = '*', c.ts_ns DESC
  LIMIT 1
) AS l
WHERE $__timeFilter(p.ts) AND p.venue IN ($venue) AND p.symbol IN ($symbol)
GROUP BY 1, 2
ORDER BY 1, 2"""

RISK = Dashboard(
    uid="quoteflow-risk",
    title="quoteflow / Risk & audit",
    description="Trading state, limit usage, rejections, surveillance alerts and operator "
                "commands (docs/risk.md, docs/surveillance.md).",
    variables=VARIABLES,
    panels=(
        Panel("Trading state", _TRADING_STATE, ("time", "metric", "state"), kind="state",
              value_texts=_TRADING_STATES,
              description="State of each risk scope: * (everything), a venue, an instrument."),
        Panel("Position limit usage", _POSITION_LIMIT_USAGE,
              ("time", "metric", "max_position_used"), unit="percentunit",
              description="Largest |position| / max_position per interval, against the "
                          "max_position operators last set (instrument first, then *)."),
        Panel("Pre-trade rejects by reason",
              _series("count(*) AS rejects", "risk_events", metric="reason_code",
                      where="kind = 'reject' AND (venue IS NULL OR venue IN ($venue))"),
              ("time", "metric", "rejects"), kind="bars",
              description="Orders the risk engine refused, by reason code (models/risk)."),
        Panel("Venue rejects by reason",
              _series("count(*) AS rejects", "order_events",
                      metric="coalesce(reason, 'unknown')",
                      where=f"kind = 'reject' AND {_IN_SELECTION}"),
              ("time", "metric", "rejects"), kind="bars",
              description="Orders the venue (or paper venue) refused, by its reason."),
        Panel("Risk events",
              "SELECT ts AS \"time\", kind, reason_code, state,"
              " coalesce(venue || coalesce(':' || symbol, ''), '*') AS scope, detail\n"
              "FROM risk_events\nWHERE $__timeFilter(ts) AND (venue IS NULL OR venue IN ($venue))\n"
              "ORDER BY ts_ns DESC\nLIMIT 200",
              ("time", "kind", "reason_code", "state", "scope", "detail"), kind="table",
              description="Rejections, breaches, state and limit changes, latest first."),
        Panel("Surveillance alerts by kind",
              _series("count(*) AS alerts", "surveillance_alerts", metric="kind"),
              ("time", "metric", "alerts"), kind="bars",
              description="Market-abuse alerts on our own orders (docs/surveillance.md): "
                          "order-to-trade, cancel ratio, message rate, wash, spoofing, layering."),
        Panel("Surveillance alerts",
              "SELECT ts AS \"time\", kind, venue || ' ' || symbol AS instrument, value,"
              " threshold, detail, client_order_ids::text AS orders, alert_id\n"
              f"FROM surveillance_alerts\nWHERE $__timeFilter(ts) AND {_IN_SELECTION}\n"
              "ORDER BY ts_ns DESC\nLIMIT 200",
              ("time", "kind", "instrument", "value", "threshold", "detail", "orders",
               "alert_id"), kind="table",
              description="Each alert, latest first: what was measured against which "
                          "threshold and the orders involved (`quoteflow report suspicious`)."),
        Panel("Operator commands",
              "SELECT ts AS \"time\", issued_by, action, target, params::text AS params,"
              " command_id\n"
              "FROM control_commands\nWHERE $__timeFilter(ts)\nORDER BY ts_ns DESC\nLIMIT 200",
              ("time", "issued_by", "action", "target", "params", "command_id"), kind="table",
              description="Every command from the control topic, with who issued it."),
    ),
)

_MARKET_DATA_RATE = "\nUNION ALL\n".join(
    f"SELECT $__timeGroupAlias(ts, $__interval), '{name}' AS metric,"
    f" count(*) * 1000.0 / $__interval_ms AS events_per_s\n"
    f"FROM {table}\nWHERE $__timeFilter(ts) AND {_IN_SELECTION}\nGROUP BY 1"
    for name, table in (("bbo", "md_bbo"), ("book", "md_book_top"), ("trades", "md_trades"))
) + "\nORDER BY 1, 2"

PIPELINE = Dashboard(
    uid="quoteflow-pipeline",
    title="quoteflow / Pipeline",
    description="Ingest lag, throughput, order book health and dead letters.",
    variables=VARIABLES,
    panels=(
        Panel("Exchange to receive lag",
              _series("percentile_cont(0.5) WITHIN GROUP (ORDER BY receive_ts_ns - exchange_ts_ns)"
                      " / 1e6 AS p50_ms,\n  percentile_cont(0.99) WITHIN GROUP"
                      " (ORDER BY receive_ts_ns - exchange_ts_ns) / 1e6 AS p99_ms", "md_bbo"),
              ("time", "metric", "p50_ms", "p99_ms"), unit="ms",
              description="Local receive time minus the exchange's event time of BBO updates: "
                          "network and venue delay (and clock offset)."),
        Panel("Market data rate", _MARKET_DATA_RATE, ("time", "metric", "events_per_s"),
              unit="short", description="Stored market events per second, by table."),
        Panel("Order book status",
              _series("count(*) AS messages", "md_book_top",
                      metric=f"{_INSTRUMENT} || ' ' || status"),
              ("time", "metric", "messages"), kind="bars",
              description="L2 messages by the book's status after them: applied, or buffered "
                          "/ gap / stale while it is out of sync."),
        Panel("Dead letters by source",
              _series("count(*) AS dead_letters", "dead_letters", metric="source", where="true"),
              ("time", "metric", "dead_letters"), kind="bars",
              description="Input that could not be turned into events or stored."),
        Panel("Dead letters by reason",
              "SELECT source, left(reason, 200) AS reason, count(*) AS count,"
              " min(ts) AS first_seen, max(ts) AS last_seen\n"
              "FROM dead_letters\nWHERE $__timeFilter(ts)\nGROUP BY 1, 2\n"
              "ORDER BY count DESC, source, reason",
              ("source", "reason", "count", "first_seen", "last_seen"), kind="table",
              description="The reasons behind the dead letters, most frequent first; the raw "
                          "input is in dead_letters.raw."),
    ),
)

DASHBOARDS = (MARKET, MARKET_MAKING, ARBITRAGE, MODELS, RISK, PIPELINE)


def render(dashboard: Dashboard) -> str:
    """The dashboard's JSON file content: stable key order, so diffs stay readable."""
    return json.dumps(dashboard_json(dashboard), indent=2, ensure_ascii=False) + "\n"


def write_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Write every dashboard to `directory` as `<uid>.json`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in DASHBOARDS:
        path = directory / dashboard.file_name
        path.write_text(render(dashboard), encoding="utf-8")
        written.append(path)
    return written
