"""A DSN's password never reaches an error message, a repr or a log line (canary tests).

The driver quotes the offending part of a DSN it cannot parse: a `%` not escaped in the
password gave `invalid percent-encoded token: "Sup3r%Secret!"`, a missing `]` the whole URI.
No server needed: every DSN here fails before or at connecting (closed port 9).
"""

from __future__ import annotations

import logging

import pytest

from connectors.timescale import StorageUnavailable, TimescaleConfig, connect
from connectors.timescale.config import InvalidDsn, dsn_secrets, redact

CANARY = "Sup3r%Canary!pw"
CANARY_PLAIN = "canaryPassw0rd"

DSNS = [
    (f"postgresql://quoteflow:{CANARY}@127.0.0.1:9/quoteflow", InvalidDsn),
    (f"postgresql://quoteflow:{CANARY_PLAIN}@[::1/quoteflow", InvalidDsn),
    (f"host=127.0.0.1 port=9 password='{CANARY_PLAIN} dbname=x", InvalidDsn),
    (f"postgresql://u:{CANARY_PLAIN}@127.0.0.1:9/db?sslmode=bogus", StorageUnavailable),
    (f"host=127.0.0.1 port=9 password={CANARY_PLAIN} user=u dbname=x", StorageUnavailable),
    (f"postgresql://u:{CANARY_PLAIN}@127.0.0.1:9/db", StorageUnavailable),
]


@pytest.mark.parametrize(("dsn", "error_type"), DSNS)
def test_connect_errors_never_hold_the_password(dsn, error_type, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(error_type) as error:
        connect(TimescaleConfig(dsn=dsn, connect_timeout_s=1))
    text = str(error.value)
    assert "PostgreSQL" in text and "\n" not in text
    for canary in (CANARY, CANARY_PLAIN, "Canary"):
        assert canary not in text
        assert canary not in caplog.text
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_the_config_repr_hides_the_dsn() -> None:
    assert CANARY_PLAIN not in repr(TimescaleConfig(dsn=f"postgresql://u:{CANARY_PLAIN}@h/db"))


def test_every_form_of_the_password_is_found() -> None:
    assert dsn_secrets("postgresql://u:p%40ss@h/db") == {"p%40ss", "p@ss"}
    assert dsn_secrets("host=h password='a b' user=u") >= {"a b"}
    assert redact('bad token: "p%40ss" and p@ss', "postgresql://u:p%40ss@h/db") == (
        'bad token: "…" and ***')
