"""The tables every topic is stored in: one declaration feeds the DDL and the COPY writers.

Conventions, the same in every table:
- `ts timestamptz` is the event's own time (exchange time for market data) at microsecond
  resolution, what Grafana and time-range queries use; the exact integer nanoseconds stay
  beside it as `bigint` (`*_ns`) because ordering within a microsecond matters.
- Prices, sizes, fees and PnL are `numeric`: exact, on the venue's grid, never floats.
  Model outputs (probabilities, edges in bps) are `double precision`.
- Tables are append-only logs without primary keys: a hypertable's unique keys would have
  to include `ts`. Persist stores each event once by committing its Kafka offsets with the
  rows (`positions`), not by keys here.
"""

from __future__ import annotations

from typing import NamedTuple


class Column(NamedTuple):
    name: str
    sql_type: str
    nullable: bool = False


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    # How the API and dashboards filter besides time: the lookup index's leading columns and
    # TimescaleDB's compression segments.
    index: tuple[str, ...]
    # Market data: arrives in time order at high rates, ages out under TimescaleDB's
    # retention policy, and is indexed by a BRIN on `ts` (a b-tree on every row would halve
    # COPY throughput). Trading records are few, kept forever, and get the b-tree.
    market_data: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def _c(name: str, sql_type: str, nullable: bool = False) -> Column:
    return Column(name, sql_type, nullable)


_MARKET = (
    _c("ts", "timestamptz"),
    _c("exchange_ts_ns", "bigint"),
    _c("receive_ts_ns", "bigint"),
    _c("venue", "text"),
    _c("symbol", "text"),
    _c("seq", "bigint", nullable=True),
)
_TOP = (
    _c("bid_price", "numeric", nullable=True),
    _c("bid_size", "numeric", nullable=True),
    _c("ask_price", "numeric", nullable=True),
    _c("ask_size", "numeric", nullable=True),
)
# A record's own time in both forms (see the module notes): the start of every table but
# market data's, which keeps the exchange's and the receiver's clocks apart.
_STAMPED = (
    _c("ts", "timestamptz"),
    _c("ts_ns", "bigint"),
)
_TRADING = (
    *_STAMPED,
    _c("venue", "text"),
    _c("symbol", "text"),
)
_INSTRUMENT = ("venue", "symbol")

MD_BBO = Table("md_bbo", (*_MARKET, *_TOP), _INSTRUMENT, market_data=True)
MD_TRADES = Table(
    "md_trades",
    (
        *_MARKET,
        _c("trade_id", "text", nullable=True),
        _c("side", "text"),
        _c("price", "numeric"),
        _c("size", "numeric"),
    ),
    _INSTRUMENT,
    market_data=True,
)
# One row per L2 message (snapshot or delta): the book's top and depth after applying it.
# The raw levels stay on the `md.book` topic; the dashboards need top and depth, and a row
# per level would be an order of magnitude more volume than everything else together.
MD_BOOK_TOP = Table(
    "md_book_top",
    (
        *_MARKET,
        _c("kind", "text"),
        _c("status", "text"),
        _c("levels_changed", "integer"),
        *_TOP,
        _c("bid_depth", "numeric", nullable=True),
        _c("ask_depth", "numeric", nullable=True),
    ),
    _INSTRUMENT,
    market_data=True,
)
ORDER_INTENTS = Table(
    "order_intents",
    (
        *_TRADING,
        _c("intent_id", "text"),
        _c("strategy", "text"),
        _c("bid_prices", "numeric[]"),
        _c("bid_sizes", "numeric[]"),
        _c("ask_prices", "numeric[]"),
        _c("ask_sizes", "numeric[]"),
        _c("reference_mid", "numeric", nullable=True),
        _c("trigger_receive_ts_ns", "bigint", nullable=True),
    ),
    _INSTRUMENT,
)
ORDER_EVENTS = Table(
    "order_events",
    (
        *_TRADING,
        _c("kind", "text"),
        _c("client_order_id", "text"),
        _c("exchange_order_id", "text", nullable=True),
        _c("side", "text"),
        _c("price", "numeric", nullable=True),
        _c("size", "numeric"),
        _c("filled", "numeric"),
        _c("remaining", "numeric"),
        _c("reason", "text", nullable=True),
    ),
    _INSTRUMENT,
)
FILLS = Table(
    "fills",
    (
        *_TRADING,
        _c("client_order_id", "text"),
        _c("trade_id", "text"),
        _c("side", "text"),
        _c("price", "numeric"),
        _c("size", "numeric"),
        _c("fee", "numeric"),
        _c("fee_currency", "text"),
        _c("liquidity", "text"),
    ),
    _INSTRUMENT,
)
POSITIONS = Table(
    "positions",
    (
        *_TRADING,
        _c("quantity", "numeric"),
        _c("average_price", "numeric", nullable=True),
        _c("realized_pnl", "numeric"),
        _c("unrealized_pnl", "numeric"),
        _c("fees", "numeric"),
        _c("mark_price", "numeric", nullable=True),
    ),
    _INSTRUMENT,
)
ARB_SIGNALS = Table(
    "arb_signals",
    (
        *_STAMPED,
        _c("kind", "text"),
        _c("buy_venue", "text"),
        _c("buy_symbol", "text"),
        _c("buy_price", "numeric"),
        _c("sell_venue", "text"),
        _c("sell_symbol", "text"),
        _c("sell_price", "numeric"),
        _c("size", "numeric"),
        _c("gross_edge_bps", "double precision"),
        _c("net_edge_bps", "double precision"),
        _c("buy_age_ns", "bigint"),
        _c("sell_age_ns", "bigint"),
    ),
    ("buy_venue", "sell_venue"),
)
PREDICTIONS = Table(
    "predictions",
    (
        *_TRADING,
        _c("horizon_ns", "bigint"),
        _c("model", "text"),
        _c("prob_up", "double precision"),
        _c("prob_down", "double precision"),
        _c("expected_move", "double precision"),
        _c("rolling_accuracy", "double precision", nullable=True),
        _c("baseline_accuracy", "double precision", nullable=True),
        _c("rolling_log_loss", "double precision", nullable=True),
    ),
    _INSTRUMENT,
)
RISK_EVENTS = Table(
    "risk_events",
    (
        *_STAMPED,
        _c("kind", "text"),
        _c("reason_code", "text"),
        _c("detail", "text"),
        _c("state", "text"),
        _c("venue", "text", nullable=True),
        _c("symbol", "text", nullable=True),
    ),
    ("kind",),
)
CONTROL_COMMANDS = Table(
    "control_commands",
    (
        *_STAMPED,
        _c("command_id", "text"),
        _c("issued_by", "text"),
        _c("action", "text"),
        _c("target", "text"),
        _c("params", "jsonb"),
        # The signature and what it covers beside the fields above (`models.command_signing`),
        # so an auditor can re-verify who issued each command; NULL for an unsigned command
        # and for rows stored before migration 4.
        _c("v", "integer", nullable=True),
        _c("nonce", "text", nullable=True),
        _c("key_id", "text", nullable=True),
        _c("signature", "text", nullable=True),
    ),
    ("target",),
)
# Each process's answer to each control command (`models.events.ControlAck`): what the
# control API shows as applied, and the record of every refused command.
CONTROL_ACKS = Table(
    "control_acks",
    (
        *_STAMPED,
        _c("process", "text"),
        _c("command_id", "text"),
        _c("issued_by", "text"),
        _c("action", "text"),
        _c("target", "text"),
        _c("status", "text"),
        _c("reason", "text", nullable=True),
        _c("state", "jsonb"),
    ),
    ("target",),
)
# Market-abuse alerts (`models.events.SurveillanceAlert`, topic `surveillance.alerts`): what
# `quoteflow report suspicious` exports. Kept forever, as every trading record.
SURVEILLANCE_ALERTS = Table(
    "surveillance_alerts",
    (
        *_STAMPED,
        _c("alert_id", "text"),
        _c("account", "text"),
        _c("venue", "text"),
        _c("symbol", "text"),
        _c("kind", "text"),
        _c("value", "double precision"),
        _c("threshold", "double precision"),
        _c("window_ns", "bigint"),
        _c("detail", "text"),
        _c("client_order_ids", "jsonb"),
    ),
    ("venue", "symbol", "kind"),
)
# The hash-chained audit trail (`models.audit.AuditRecord`, on the `audit` topic): stored
# whole so the chain can be re-verified from the database.
AUDIT = Table(
    "audit",
    (
        *_STAMPED,
        _c("seq", "bigint"),
        _c("actor", "text"),
        _c("action", "text"),
        _c("payload", "jsonb"),
        _c("prev_hash", "text"),
        _c("hash", "text"),
    ),
    ("actor",),
)
# Input that could not be stored, from the producers' dead-letter events and from the
# writers' own rejections alike; `ts` is when it was received or rejected.
DEAD_LETTERS = Table(
    "dead_letters",
    (
        *_STAMPED,
        _c("source", "text"),
        _c("reason", "text"),
        _c("raw", "text"),
    ),
    ("source",),
)

TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        MD_BBO,
        MD_TRADES,
        MD_BOOK_TOP,
        ORDER_INTENTS,
        ORDER_EVENTS,
        FILLS,
        POSITIONS,
        ARB_SIGNALS,
        PREDICTIONS,
        RISK_EVENTS,
        SURVEILLANCE_ALERTS,
        CONTROL_COMMANDS,
        CONTROL_ACKS,
        AUDIT,
        DEAD_LETTERS,
    )
}


def create_table_sql(table: Table) -> str:
    columns = ",\n    ".join(
        f"{c.name} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    return f"CREATE TABLE {table.name} (\n    {columns}\n)"


def create_index_sql(table: Table) -> str:
    if table.market_data:
        return f"CREATE INDEX {table.name}_ts ON {table.name} USING brin (ts)"
    columns = ", ".join((*table.index, "ts DESC"))
    return f"CREATE INDEX {table.name}_lookup ON {table.name} ({columns})"
