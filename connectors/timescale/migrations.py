"""Versioned schema migrations, with TimescaleDB features when the server has the extension.

Each migration runs in its own transaction under an advisory lock and is recorded in
`schema_migrations`, so running `migrate` again (or from two processes at once) is a no-op.
A migration has a plain-PostgreSQL form and a TimescaleDB form that create the same names
with the same columns: hypertables vs plain tables, continuous aggregates vs plain views.
Every query (API, Grafana) therefore runs unchanged on both. The form is chosen once, when
the migration is applied, and recorded beside it: a plain database stays plain even if the
extension appears later (converting it is a deliberate, separate operation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import psycopg

from connectors.timescale.positions import POSITIONS_DDL
from connectors.timescale.schema import (
    CONTROL_ACKS,
    TABLES,
    create_index_sql,
    create_table_sql,
)

Flavour = Literal["plain", "timescale"]

# Any constant shared by all migrators of this schema; serialises concurrent `migrate` calls.
_LOCK_ID = 0x71F10_5C4E3A


class Migration(NamedTuple):
    version: int
    name: str
    plain: tuple[str, ...]
    timescale: tuple[str, ...]

    def statements(self, flavour: Flavour) -> tuple[str, ...]:
        return self.timescale if flavour == "timescale" else self.plain


class MigrationError(RuntimeError):
    """A migration that could not be applied; its transaction was rolled back."""


_CORE = tuple(
    statement
    for table in TABLES.values()
    for statement in (create_table_sql(table), create_index_sql(table))
)

# The 1-minute aggregates. Plain views compute on read with ordered array_agg; Timescale's
# continuous aggregates use first()/last() and, with materialized_only = false, include
# the not yet materialized recent minutes, so both answer the same query the same way.
_OHLCV_PLAIN = """CREATE VIEW md_ohlcv_1m AS
SELECT date_trunc('minute', ts) AS bucket, venue, symbol,
    (array_agg(price ORDER BY exchange_ts_ns, receive_ts_ns))[1] AS open,
    max(price) AS high,
    min(price) AS low,
    (array_agg(price ORDER BY exchange_ts_ns DESC, receive_ts_ns DESC))[1] AS close,
    sum(size) AS volume,
    sum(price * size) AS notional,
    count(*) AS trades
FROM md_trades
GROUP BY 1, venue, symbol"""

# One taker order prints several trades at one exchange millisecond: ordered by `ts` alone,
# first()/last() would pick any of them. The plain view's order as one sortable number.
_TRADE_ORDER = "exchange_ts_ns::numeric * 10000000000000000000 + receive_ts_ns"
_OHLCV_TIMESCALE = f"""CREATE MATERIALIZED VIEW md_ohlcv_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, venue, symbol,
    first(price, {_TRADE_ORDER}) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, {_TRADE_ORDER}) AS close,
    sum(size) AS volume,
    sum(price * size) AS notional,
    count(*) AS trades
FROM md_trades
GROUP BY bucket, venue, symbol
WITH NO DATA"""

_PNL_PLAIN = """CREATE VIEW pnl_1m AS
SELECT date_trunc('minute', ts) AS bucket, venue, symbol,
    (array_agg(quantity ORDER BY ts_ns DESC))[1] AS quantity,
    (array_agg(realized_pnl ORDER BY ts_ns DESC))[1] AS realized_pnl,
    (array_agg(unrealized_pnl ORDER BY ts_ns DESC))[1] AS unrealized_pnl,
    (array_agg(fees ORDER BY ts_ns DESC))[1] AS fees,
    count(*) AS samples
FROM positions
GROUP BY 1, venue, symbol"""

_PNL_TIMESCALE = """CREATE MATERIALIZED VIEW pnl_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket, venue, symbol,
    last(quantity, ts) AS quantity,
    last(realized_pnl, ts) AS realized_pnl,
    last(unrealized_pnl, ts) AS unrealized_pnl,
    last(fees, ts) AS fees,
    count(*) AS samples
FROM positions
GROUP BY bucket, venue, symbol
WITH NO DATA"""

MARKET_DATA_RETENTION = "90 days"
COMPRESS_AFTER = "7 days"


def _hypertable(name: str, segment_by: Sequence[str], market_data: bool) -> tuple[str, ...]:
    statements = (
        f"SELECT create_hypertable('{name}', 'ts', chunk_time_interval => INTERVAL '1 day', "
        "migrate_data => TRUE, if_not_exists => TRUE)",
        f"ALTER TABLE {name} SET (timescaledb.compress, "
        f"timescaledb.compress_segmentby = '{', '.join(segment_by)}', "
        "timescaledb.compress_orderby = 'ts DESC')",
        f"SELECT add_compression_policy('{name}', INTERVAL '{COMPRESS_AFTER}', "
        "if_not_exists => TRUE)",
    )
    if market_data:
        statements += (
            f"SELECT add_retention_policy('{name}', INTERVAL '{MARKET_DATA_RETENTION}', "
            "if_not_exists => TRUE)",
        )
    return statements


def _refresh_policy(view: str) -> str:
    return (
        f"SELECT add_continuous_aggregate_policy('{view}', start_offset => INTERVAL '1 day', "
        "end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute')"
    )


# Migration 1 creates the tables as declared today, so on a new database these columns exist
# already; on one migrated before they were declared they are added (NULL in the old rows).
_SIGNATURES = tuple(
    f"ALTER TABLE control_commands ADD COLUMN IF NOT EXISTS {name} {sql_type}"
    for name, sql_type in (("v", "integer"), ("nonce", "text"), ("key_id", "text"),
                           ("signature", "text"))
)

# Control acknowledgements (migration 5): on a database created since they were declared,
# migrations 1 and 2 made the table already, so every statement here may find it done.
_ACKS = (
    create_table_sql(CONTROL_ACKS).replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1),
    create_index_sql(CONTROL_ACKS).replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1),
)

# Surveillance alerts (migration 6): on a database created since they were declared,
# migrations 1 and 2 made the table already, so every statement here may find it done.
_ALERTS_TABLE = TABLES["surveillance_alerts"]
_ALERTS = (
    create_table_sql(_ALERTS_TABLE).replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1),
    create_index_sql(_ALERTS_TABLE).replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1),
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables for every topic", _CORE, _CORE),
    Migration(
        2,
        "time-series storage and 1-minute aggregates",
        plain=(_OHLCV_PLAIN, _PNL_PLAIN),
        timescale=(
            "CREATE EXTENSION IF NOT EXISTS timescaledb",
            *(
                statement
                for table in TABLES.values()
                for statement in _hypertable(table.name, table.index, table.market_data)
            ),
            _OHLCV_TIMESCALE,
            _refresh_policy("md_ohlcv_1m"),
            _PNL_TIMESCALE,
            _refresh_policy("pnl_1m"),
        ),
    ),
    Migration(3, "persist's Kafka offsets and books (exactly-once)", POSITIONS_DDL, POSITIONS_DDL),
    Migration(4, "control commands keep their signatures", _SIGNATURES, _SIGNATURES),
    Migration(5, "control acknowledgements", _ACKS, (
        *_ACKS, *_hypertable(CONTROL_ACKS.name, CONTROL_ACKS.index, CONTROL_ACKS.market_data),
    )),
    Migration(6, "surveillance alerts", _ALERTS, (
        *_ALERTS,
        *_hypertable(_ALERTS_TABLE.name, _ALERTS_TABLE.index, _ALERTS_TABLE.market_data),
    )),
)


def timescale_available(conn: psycopg.Connection) -> bool:
    """Whether the server can load the `timescaledb` extension (installed or installable)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    ).fetchone()
    return bool(row and row[0])


def applied_migrations(conn: psycopg.Connection) -> dict[int, Flavour]:
    """Applied versions and the form each was applied in; empty on a fresh database."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        return {}
    rows = conn.execute("SELECT version, flavour FROM schema_migrations").fetchall()
    return {version: flavour for version, flavour in rows}


def migrate(
    conn: psycopg.Connection,
    timescale: bool | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Apply the migrations not yet applied, in order; return the versions applied now.

    `timescale=None` uses TimescaleDB when the server has it; True insists on it.
    """
    if timescale is None:
        timescale = timescale_available(conn)
    elif timescale and not timescale_available(conn):
        raise MigrationError(
            "TimescaleDB was required but the server has no `timescaledb` extension "
            "(pg_available_extensions); install it or migrate with timescale=None/False"
        )
    flavour: Flavour = "timescale" if timescale else "plain"
    with conn.transaction():
        _lock(conn)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, flavour text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    applied_now = []
    for migration in sorted(migrations, key=lambda m: m.version):
        try:
            with conn.transaction():
                _lock(conn)
                # Read under the lock: another migrator may have applied it meanwhile.
                if migration.version in applied_migrations(conn):
                    continue
                for statement in migration.statements(flavour):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, flavour) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, flavour),
                )
        except psycopg.Error as error:
            raise MigrationError(
                f"migration {migration.version} ({migration.name}, {flavour}) failed and was "
                f"rolled back: {error}"
            ) from error
        applied_now.append(migration.version)
    return applied_now


def _lock(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
