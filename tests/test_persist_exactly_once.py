"""`quoteflow persist` killed with SIGKILL at random points over a replay stores every event
exactly once: offsets are committed with the rows (connectors.timescale.positions).

A real Kafka broker and a real PostgreSQL, started by the test session; persist runs as its
own OS process, as it does in the stack.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from bytewax.testing import run_main

from connectors.memory import ChunkedSource
from connectors.timescale import TimescaleConfig, connect
from connectors.timescale.schema import TABLES
from flows.persist import build_persist_flow
from models.events import BBO, BookDelta, BookSnapshot, Fill, OrderIntent, Position, Trade
from tests.flow_runs import QUOTEFLOW, publish, recorded_events, write_config
from tests.kafka_service import new_deployment
from tests.postgres_service import fresh_database

pytestmark = pytest.mark.integration

SEED = 20261204
KILLS = 10
TABLE_OF = {BBO: "md_bbo", Trade: "md_trades", BookSnapshot: "md_book_top",
            BookDelta: "md_book_top", Fill: "fills", Position: "positions",
            OrderIntent: "order_intents"}
_T0 = 1_723_161_300_000_000_000
_VENUE, _SYMBOL = "binanceusdm", "BTC/USDT:USDT"


def _trading_events(count: int) -> list:
    """Fills, positions and intents with distinct, exact values."""
    events = []
    for n in range(count):
        common = {"venue": _VENUE, "symbol": _SYMBOL, "ts": _T0 + n * 1_000_003}
        price = Decimal("61800.1") + Decimal(n) / 10
        events += [
            Fill(**common, client_order_id=f"c{n}", trade_id=f"t{n}", side="buy", price=price,
                 size=Decimal("0.002"), fee=Decimal("-0.0024720"), fee_currency="USDT",
                 liquidity="maker"),
            Position(**common, quantity=Decimal("0.002") * (n + 1), average_price=price,
                     realized_pnl=Decimal(n), unrealized_pnl=Decimal("0.0002"),
                     fees=Decimal("-0.0024720")),
            OrderIntent(**common, intent_id=f"i{n}", strategy="glft", bids=[], asks=[]),
        ]
    return events


def _rows(dsn: str) -> dict[str, Counter]:
    """Every event table's rows as text, counted (order is not part of a table's content)."""
    with connect(TimescaleConfig(dsn=dsn)) as conn:
        return {
            table: Counter(row[0] for row in conn.execute(f"SELECT t::text FROM {table} t"))
            for table in TABLES
        }


def _committed(dsn: str) -> int:
    with connect(TimescaleConfig(dsn=dsn)) as conn:
        exists = conn.execute("SELECT to_regclass('persist_offsets') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        total = "SELECT coalesce(sum(next_offset), 0) FROM persist_offsets"
        return conn.execute(total).fetchone()[0]


def _config(directory: Path, deployment, dsn: str, postgres: str = "") -> Path:
    path = write_config(directory / "quoteflow.toml", deployment)
    with path.open("a") as toml:
        toml.write(f'[postgres]\ndsn = "{dsn}"\n{postgres}')
    return path


def _start(config: Path, log: Path, *args: str) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([str(QUOTEFLOW), "persist", "-c", str(config), *args],
                                stdout=out, stderr=subprocess.STDOUT)


def _kill_after_progress(process: subprocess.Popen, dsn: str, rng: random.Random) -> int:
    """SIGKILL at a random point after the process committed something of its own."""
    before = _committed(dsn)
    deadline = time.monotonic() + 30
    while _committed(dsn) == before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.4))  # somewhere inside the next flushes
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return _committed(dsn) - before


def test_persist_killed_ten_times_over_a_replay_stores_each_event_exactly_once(
    kafka_bootstrap, postgres_dsn, tmp_path
):
    rng = random.Random(SEED)
    deployment = new_deployment(kafka_bootstrap)
    events = recorded_events(24_000) + _trading_events(300)
    # One slice before each run and the last for the final one: every killed run has work
    # of its own (a run that finds everything stored has nothing to be killed inside).
    size = -(-len(events) // (KILLS + 1))
    slices = [events[i:i + size] for i in range(0, len(events), size)]
    with fresh_database(postgres_dsn) as dsn, fresh_database(postgres_dsn) as reference_dsn:
        # Small batches: many transactions, so the kills land between and inside them.
        config = _config(tmp_path, deployment, dsn, "batch_rows = 500\nflush_interval_s = 0.05\n"
                         "partitions = 2\n")
        log = tmp_path / "persist.log"
        progress = []
        for part in slices[:KILLS]:
            publish(deployment, part)
            progress.append(_kill_after_progress(_start(config, log), dsn, rng))
        for part in slices[KILLS:]:
            publish(deployment, part)
        final = _start(config, log, "--until-end")
        assert final.wait(timeout=120) == 0, log.read_text()[-3000:]

        run_main(build_persist_flow(ChunkedSource(events, 512),
                                    TimescaleConfig(dsn=reference_dsn, partitions=2)))
        stored, expected = _rows(dsn), _rows(reference_dsn)

    assert all(step > 0 for step in progress), f"each run committed before its kill: {progress}"
    counts = Counter(TABLE_OF[type(event)] for event in events)
    assert {t: sum(rows.values()) for t, rows in stored.items() if rows} == dict(counts)
    for table in TABLES:
        assert stored[table] == expected[table], f"{table} differs from an uninterrupted run"


def test_persist_resumes_from_the_database_not_from_the_beginning(
    kafka_bootstrap, postgres_dsn, tmp_path
):
    """A clean second run over caught-up topics adds nothing (the issue's 31,070 → 62,140)."""
    deployment = new_deployment(kafka_bootstrap)
    events = recorded_events(3_000) + _trading_events(20)
    publish(deployment, events)
    with fresh_database(postgres_dsn) as dsn:
        config = _config(tmp_path, deployment, dsn)
        log = tmp_path / "persist.log"
        for _ in range(2):
            assert _start(config, log, "--until-end").wait(timeout=120) == 0, log.read_text()
            totals = {t: sum(rows.values()) for t, rows in _rows(dsn).items() if rows}
            assert totals == dict(Counter(TABLE_OF[type(event)] for event in events))

