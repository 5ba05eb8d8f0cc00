"""PostgreSQL/TimescaleDB storage: schema migrations, batched COPY writers, the persist sink.

See docs/storage.md for the schema, the two forms (TimescaleDB or plain PostgreSQL) and
how rejected rows are reported.
"""

from connectors.timescale.config import StorageUnavailable, TimescaleConfig, connect
from connectors.timescale.migrations import (
    MIGRATIONS,
    MigrationError,
    applied_migrations,
    migrate,
    timescale_available,
)
from connectors.timescale.sink import TimescaleSink, route
from connectors.timescale.writer import EventWriter, WriterStats

__all__ = [
    "MIGRATIONS",
    "EventWriter",
    "MigrationError",
    "StorageUnavailable",
    "TimescaleConfig",
    "TimescaleSink",
    "WriterStats",
    "applied_migrations",
    "connect",
    "migrate",
    "route",
    "timescale_available",
]
