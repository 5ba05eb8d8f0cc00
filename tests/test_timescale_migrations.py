"""Schema migrations against a real PostgreSQL; the TimescaleDB form is parsed, not run.

TimescaleDB cannot be installed on these machines, so its statements are checked by
PostgreSQL's own parser (pglast wraps libpg_query) and by comparing what they create with
the plain form, and the choice between the forms is tested on the real server.
"""

from __future__ import annotations

import psycopg
import pytest
from pglast import parse_sql
from pglast.ast import ColumnRef, CreateTableAsStmt, ResTarget, ViewStmt

from connectors.timescale import (
    MIGRATIONS,
    MigrationError,
    TimescaleConfig,
    applied_migrations,
    connect,
    migrate,
    timescale_available,
)
from connectors.timescale.migrations import Migration
from connectors.timescale.schema import TABLES
from tests.postgres_service import fresh_database

VIEWS = ("md_ohlcv_1m", "pnl_1m")


@pytest.fixture
def conn(postgres_dsn):
    with fresh_database(postgres_dsn) as dsn, connect(TimescaleConfig(dsn=dsn)) as connection:
        yield connection


def _relations(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm')"
    ).fetchall()
    return dict(rows)


def _columns(conn: psycopg.Connection, relation: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = %s ORDER BY ordinal_position",
        (relation,),
    ).fetchall()


def test_plain_server_has_no_timescale(conn):
    assert timescale_available(conn) is False


def test_migrations_apply_on_an_empty_database_then_rerun_as_noops(conn):
    assert applied_migrations(conn) == {}
    assert migrate(conn) == [m.version for m in MIGRATIONS]
    assert applied_migrations(conn) == {m.version: "plain" for m in MIGRATIONS}
    relations = _relations(conn)
    for name, table in TABLES.items():
        assert relations[name] == "r"
        assert [c for c, _ in _columns(conn, name)] == list(table.column_names)
    assert all(relations[view] == "v" for view in VIEWS)

    before = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert migrate(conn) == []
    assert conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall() == before


def test_money_columns_are_numeric_and_times_are_timestamptz(conn):
    migrate(conn)
    types = dict(_columns(conn, "fills"))
    assert types["price"] == types["size"] == types["fee"] == "numeric"
    assert types["ts"] == "timestamp with time zone"
    assert types["ts_ns"] == "bigint"
    ohlcv = dict(_columns(conn, "md_ohlcv_1m"))
    assert ohlcv["bucket"] == "timestamp with time zone"
    assert ohlcv["open"] == ohlcv["close"] == ohlcv["volume"] == "numeric"


def test_requiring_timescale_on_plain_postgres_fails_clearly_and_changes_nothing(conn):
    with pytest.raises(MigrationError, match="timescaledb"):
        migrate(conn, timescale=True)
    assert applied_migrations(conn) == {}
    assert migrate(conn, timescale=False) == [m.version for m in MIGRATIONS]


def test_a_failing_migration_is_rolled_back_whole(conn):
    broken = Migration(
        99, "half broken", ("CREATE TABLE scratch (x int)", "SELECT no_such_function()"), ()
    )
    with pytest.raises(MigrationError, match=r"migration 99 \(half broken, plain\)"):
        migrate(conn, migrations=(*MIGRATIONS, broken))
    assert sorted(applied_migrations(conn)) == [m.version for m in MIGRATIONS]
    assert "scratch" not in _relations(conn)


def _statements(flavour: str) -> list[str]:
    return [s for m in MIGRATIONS for s in m.statements(flavour)]


@pytest.mark.parametrize("flavour", ["plain", "timescale"])
def test_every_statement_parses_as_postgresql(flavour):
    for statement in _statements(flavour):
        assert len(parse_sql(statement)) == 1, statement


def test_timescale_form_makes_every_table_a_compressed_hypertable():
    statements = _statements("timescale")
    assert statements[len(MIGRATIONS[0].timescale)] == "CREATE EXTENSION IF NOT EXISTS timescaledb"

    def has(prefix: str) -> bool:
        return any(s.startswith(prefix) for s in statements)

    for name, table in TABLES.items():
        assert has(f"SELECT create_hypertable('{name}', 'ts'")
        assert has(f"ALTER TABLE {name} SET (timescaledb.compress")
        assert has(f"SELECT add_retention_policy('{name}'") == table.market_data
    for view in VIEWS:
        assert has(f"SELECT add_continuous_aggregate_policy('{view}'")
    assert not any("timescaledb" in s or "time_bucket" in s for s in _statements("plain"))


def _view_outputs(flavour: str) -> dict[str, list[str]]:
    """Output column names of the views each form creates, from the parse tree."""
    outputs = {}
    for statement in _statements(flavour):
        node = parse_sql(statement)[0].stmt
        if isinstance(node, ViewStmt):
            name, query = node.view.relname, node.query
        elif isinstance(node, CreateTableAsStmt):
            assert any(o.defname == "continuous" for o in node.into.options)
            name, query = node.into.rel.relname, node.query
        else:
            continue
        outputs[name] = [_output_name(target) for target in query.targetList]
    return outputs


def _output_name(target: ResTarget) -> str:
    if target.name:
        return target.name
    assert isinstance(target.val, ColumnRef)
    return target.val.fields[-1].sval


def test_both_forms_create_the_same_aggregates_with_the_same_columns(conn):
    plain, timescale = _view_outputs("plain"), _view_outputs("timescale")
    assert plain == timescale
    assert set(plain) == set(VIEWS)
    migrate(conn)
    for view, columns in plain.items():
        assert [c for c, _ in _columns(conn, view)] == columns


def test_a_database_migrated_before_signatures_were_kept_gets_their_columns(conn):
    before = [m for m in MIGRATIONS if m.version < 4]
    migrate(conn, migrations=before)
    for column in ("v", "nonce", "key_id", "signature"):  # as migration 1 created it then
        conn.execute(f"ALTER TABLE control_commands DROP COLUMN {column}")
    assert migrate(conn) == [m.version for m in MIGRATIONS if m.version >= 4]
    assert [name for name, _ in _columns(conn, "control_commands")] \
        == list(TABLES["control_commands"].column_names)
