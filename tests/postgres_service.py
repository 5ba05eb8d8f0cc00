"""A real PostgreSQL for the tests: a throwaway cluster on 127.0.0.1, started once per session.

`scripts/services/postgres.sh` installs Debian's server package when it is missing, runs
`initdb` in a temporary directory and starts the server on a free port; the fixture stops it
and deletes the directory afterwards. Tests that need an empty database create their own
with `fresh_database`, so they never see each other's rows.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services" / "postgres.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of the session's server: database `quoteflow`, owned by the role `quoteflow`, which
    is no superuser and logs in with the password generated for the cluster (in the DSN)."""
    data_dir = tempfile.mkdtemp(prefix="quoteflow-pg-")
    started = subprocess.run(
        [str(SCRIPT), "start", data_dir, str(_free_port()), "--ephemeral"],
        capture_output=True, text=True, timeout=300,
    )
    if started.returncode != 0:
        subprocess.run([str(SCRIPT), "stop", data_dir, "--remove"], capture_output=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr.strip()}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop", data_dir, "--remove"], capture_output=True)


@contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A new empty database on the server of `dsn`, dropped afterwards; yields its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield psycopg.conninfo.make_conninfo(dsn, dbname=name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            # Not `WITH (FORCE)`: that refuses when an autovacuum worker (a process of no
            # role) happens to be in the database. A plain DROP stops autovacuum itself and
            # waits for the terminated sessions of our own role (a killed client's backend
            # may still be there) to exit.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND usename = current_user AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(f"DROP DATABASE {name}")
