"""Shared fixtures: where the recorded exchange traffic lives.

The recordings sit in `../shared/data` beside the project root (never copied into the
repo). `QUOTEFLOW_SHARED_DATA` overrides the location.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from tests.kafka_service import kafka_bootstrap  # noqa: F401
from tests.keycloak_service import keycloak_realm, keycloak_url  # noqa: F401
from tests.openbao_service import openbao  # noqa: F401
from tests.postgres_service import postgres_dsn  # noqa: F401
from tests.timescale_service import timescale_dsn  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("QUOTEFLOW_SHARED_DATA", ROOT.parent / "shared" / "data"))
BINANCE_FILES = sorted((SHARED_DATA / "binance").glob("*/*.gz"))
CRYPTOFEED_DIR = SHARED_DATA / "cryptofeed"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"recorded data not found at {SHARED_DATA}: put ../shared beside the repo")
    return SHARED_DATA


# -- pytest-xdist: how `./dev test` shares the tests between its workers --------------------

_KEYCLOAK_FIXTURES = re.compile(r"\bkeycloak_(url|realm)\b")


@functools.cache
def _uses_keycloak(test_file: str) -> bool:
    return bool(_KEYCLOAK_FIXTURES.search((ROOT / test_file).read_text()))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whole test files to a worker (their module fixtures are built once), and every file
    that asks for Keycloak to the same worker, so one Keycloak starts, not one per worker: it
    is the slowest server to start (a JVM building its Quarkus app) and the heaviest to keep.

    A scope of our own, not `--dist loadgroup` with `xdist_group` marks: pytest-xdist 3.8
    groups by renaming `item._nodeid`, which pytest 9 no longer reads. A file that reaches
    Keycloak only through another module's fixture is missed here: it then starts a second
    Keycloak on its worker, slower but still correct.
    """
    from xdist.scheduler import LoadScopeScheduling

    class _FilesAndKeycloak(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            test_file = nodeid.split("::", 1)[0]
            return "keycloak" if _uses_keycloak(test_file) else test_file

    return _FilesAndKeycloak(config, log)
