"""Where the database is and how the writers batch, and the one way to connect to it."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True, slots=True)
class TimescaleConfig:
    """`dsn` is a libpq connection string or URI (`postgresql://user@host:port/db`).

    Writers flush a table when it holds `batch_rows` rows, and every table once
    `flush_interval_s` has passed since the last flush (checked as batches arrive).
    `timescale`: None uses TimescaleDB when the server has it, True requires it, False
    never uses it. `partitions` is the number of writer connections in the persist flow.
    """

    dsn: str = "postgresql://quoteflow@127.0.0.1:5432/quoteflow"
    batch_rows: int = 5_000
    flush_interval_s: float = 1.0
    connect_timeout_s: float = 5.0
    timescale: bool | None = None
    migrate: bool = True
    partitions: int = 1

    def __post_init__(self) -> None:
        if self.batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {self.batch_rows}")
        if self.flush_interval_s < 0:
            raise ValueError(f"flush_interval_s must be >= 0, got {self.flush_interval_s}")
        if self.connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")


class StorageUnavailable(ConnectionError):
    """The database could not be reached; the message says where and why."""


def connect(config: TimescaleConfig) -> psycopg.Connection:
    """An autocommit connection (writers and migrations open their own transactions)."""
    try:
        # libpq's connect_timeout is whole seconds; at least 1 (0 would mean forever).
        return psycopg.connect(
            config.dsn,
            autocommit=True,
            connect_timeout=max(1, round(config.connect_timeout_s)),
        )
    except psycopg.ProgrammingError as error:
        raise ValueError(f"invalid PostgreSQL DSN: {error}") from None
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise StorageUnavailable(
            f"cannot connect to PostgreSQL at {_redacted(config.dsn)}: {reason}"
        ) from None


def _redacted(dsn: str) -> str:
    """The DSN without its password, fit for an error message."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    params.pop("password", None)
    return psycopg.conninfo.make_conninfo(**params)
