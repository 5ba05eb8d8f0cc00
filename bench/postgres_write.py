"""Rows/s into PostgreSQL through the persist writers (COPY), on replayed real events.

Two measurements, each the best of `--repeat` runs into emptied tables:
- `bbo+trades`: the recording's BBO and trade events through `EventWriter` (row making,
  COPY, commit): the writer's own throughput;
- `all events`: every event, book messages included, whose `md_book_top` rows need the
  order book kept up to date (the book's cost, ~3.5 µs per level update, dominates there).
Events are decoded beforehand and not timed. Without `--dsn` a throwaway server is started
with `scripts/services/postgres.sh` at default durability (fsync on) and removed afterwards.
`python -m bench.postgres_write --help` lists the options.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from bench.common import DEFAULT_DATA, ROOT, machine
from connectors.replay.recordings import Recordings
from connectors.timescale import EventWriter, TimescaleConfig, connect, migrate
from connectors.timescale.schema import TABLES
from models.events import BBO, Trade

SCRIPT = ROOT / "scripts" / "services" / "postgres.sh"
TARGET_ROWS_PER_S = 100_000


@contextmanager
def throwaway_server(port: int) -> Iterator[str]:
    data_dir = tempfile.mkdtemp(prefix="quoteflow-pg-bench-")
    try:
        dsn = subprocess.run(
            [str(SCRIPT), "start", data_dir, str(port)], capture_output=True, text=True, check=True
        ).stdout.strip().splitlines()[-1]
        yield dsn
    finally:
        subprocess.run([str(SCRIPT), "stop", data_dir, "--remove"], capture_output=True)


class Run(NamedTuple):
    seconds: float  # wall clock
    client_cpu_s: float  # this process: row making and COPY formatting
    server_cpu_s: float  # the connection's backend: parsing, constraints, index, WAL


def time_writes(config: TimescaleConfig, events: list, chunk: int) -> Run:
    with connect(config) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        writer = EventWriter(conn, config)
        server_cpu = _cpu_seconds(backend)
        client_cpu = time.process_time()
        started = time.perf_counter()
        for i in range(0, len(events), chunk):
            writer.write(events[i : i + chunk])
        writer.flush()
        run = Run(
            time.perf_counter() - started,
            time.process_time() - client_cpu,
            _cpu_seconds(backend) - server_cpu,
        )
        assert writer.stats.rejected == 0, writer.stats
        return run


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a local process (the server runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="recorded file")
    parser.add_argument("--dsn", help="an existing database (its quoteflow tables are emptied)")
    parser.add_argument("--port", type=int, default=55433, help="port of the throwaway server")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--batch-rows", type=int, default=5_000)
    parser.add_argument("--chunk", type=int, default=512, help="events per write() call")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    events = list(Recordings([args.data]).events())
    market = [e for e in events if type(e) in (BBO, Trade)]
    workloads = {"bbo+trades": market, "all events": events}
    with throwaway_server(args.port) if args.dsn is None else _given(args.dsn) as dsn:
        config = TimescaleConfig(dsn=dsn, batch_rows=args.batch_rows)
        with connect(config) as conn:
            migrate(conn)
            version = conn.execute("SHOW server_version").fetchone()[0]
        best: dict[str, Run] = {}
        for _ in range(args.repeat):  # interleaved: a noisy neighbour hurts both alike
            for name, workload in workloads.items():
                run = time_writes(config, workload, args.chunk)
                if name not in best or run.seconds < best[name].seconds:
                    best[name] = run
    results = {
        "machine": machine(),
        "postgresql": version,
        "data": args.data.name,
        "batch_rows": args.batch_rows,
        "runs": {name: _summary(len(workloads[name]), run) for name, run in best.items()},
        "target_rows_per_s": TARGET_ROWS_PER_S,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


def _summary(rows: int, run: Run) -> dict:
    return {
        "rows": rows,
        "seconds": round(run.seconds, 3),
        "rows_per_s": round(rows / run.seconds),
        "client_cpu_us_per_row": round(run.client_cpu_s / rows * 1e6, 2),
        "server_cpu_us_per_row": round(run.server_cpu_s / rows * 1e6, 2),
    }


@contextmanager
def _given(dsn: str) -> Iterator[str]:
    yield dsn


if __name__ == "__main__":
    main()
