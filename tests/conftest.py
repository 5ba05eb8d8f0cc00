"""Shared fixtures: where the recorded exchange traffic lives.

The recordings sit in `../shared/data` beside the project root (never copied into the
repo). `QUOTEFLOW_SHARED_DATA` overrides the location.
"""

from __future__ import annotations

import os
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
