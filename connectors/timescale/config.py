"""Where the database is and how the writers batch, and the one way to connect to it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import psycopg


@dataclass(frozen=True, slots=True)
class TimescaleConfig:
    """`dsn` is a libpq connection string or URI (`postgresql://user@host:port/db`).

    Writers flush a table when it holds `batch_rows` rows, and every table once
    `flush_interval_s` has passed since the last flush (checked as batches arrive).
    `timescale`: None uses TimescaleDB when the server has it, True requires it, False
    never uses it. `partitions` is the number of writer connections in the persist flow.
    """

    # Out of the repr: a DSN may carry the password, and a config is easily logged.
    dsn: str = field(default="postgresql://quoteflow@127.0.0.1:5432/quoteflow", repr=False)
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


class InvalidDsn(ValueError):
    """The DSN does not parse; the message never holds the DSN's password."""


def connect(config: TimescaleConfig) -> psycopg.Connection:
    """An autocommit connection (writers and migrations open their own transactions).

    Errors never carry the DSN's password: the driver quotes the offending part of an
    unparseable DSN (a password with a stray `%`, a whole URI with a missing `]`), so its
    quoted text is dropped and any password is cut out of what remains.
    """
    try:
        # libpq's connect_timeout is whole seconds; at least 1 (0 would mean forever).
        return psycopg.connect(
            config.dsn,
            autocommit=True,
            connect_timeout=max(1, round(config.connect_timeout_s)),
        )
    except (psycopg.ProgrammingError, ValueError) as error:  # a bad %-escape: UnicodeDecodeError
        reason = " ".join(redact(str(error), config.dsn).split())
        raise InvalidDsn(f"invalid PostgreSQL DSN: {reason}") from None
    except psycopg.OperationalError as error:
        reason = " ".join(redact(str(error), config.dsn).split()) or type(error).__name__
        raise StorageUnavailable(
            f"cannot connect to PostgreSQL at {_redacted(config.dsn)}: {reason}"
        ) from None


_QUOTED = re.compile(r'"[^"]*"')
_URI_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:(?P<password>.*)@")
_KEYWORD_PASSWORD = re.compile(r"password\s*=\s*(?P<password>'(?:[^'\\]|\\.)*'?|\S+)")


def redact(text: str, dsn: str) -> str:
    """`text` (an error message) without anything that could be the DSN's password."""
    text = _QUOTED.sub('"…"', text)
    for secret in sorted(dsn_secrets(dsn), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def dsn_secrets(dsn: str) -> set[str]:
    """Every form of the password `dsn` may hold, whether or not the DSN parses."""
    found: set[str] = set()
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except (psycopg.ProgrammingError, ValueError):
        password = None
    if password:
        found.add(str(password))
    match = _URI_PASSWORD.match(dsn)
    if match and match["password"]:
        found.update({match["password"], unquote(match["password"])})
    for match in _KEYWORD_PASSWORD.finditer(dsn):
        found.update({match["password"], match["password"].strip("'")})
    return {secret for secret in found if secret}


def _redacted(dsn: str) -> str:
    """The DSN without its password, fit for an error message."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except (psycopg.ProgrammingError, ValueError):
        return "<unparseable DSN>"
    params.pop("password", None)
    return psycopg.conninfo.make_conninfo(**params)
