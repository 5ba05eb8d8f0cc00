"""Checks on everything a caller hands the secret store, before any byte is written.

Owners and exchanges become parts of Vault paths and of the associated data bound into each
ciphertext, so they are restricted to characters that cannot traverse a path or collide with
the separator. Key material is checked for the mistakes people make when pasting keys.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

from connectors.secrets.errors import (
    InvalidIdentifierError,
    InvalidKeyMaterialError,
    UnknownExchangeError,
)

_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")

# (min, max) lengths. Real keys are 16-128 characters; Coinbase's CDP secrets are PEM blocks
# of a few hundred. The minimum catches truncated pastes, the maximum pasted files.
_LENGTHS = {"api_key": (8, 512), "secret": (8, 8192), "password": (1, 256), "uid": (1, 256)}
_PRINTABLE = frozenset(map(chr, range(0x20, 0x7F)))
# PEM-encoded secrets (Coinbase CDP keys) span lines; no other field may.
_ALLOWED = {"secret": _PRINTABLE | {"\n"}}


def check_key_material(field: str, value: object) -> str:
    """`value` if it can be the credential `field`, else InvalidKeyMaterialError.

    The error says what is wrong and where, never what the value is.
    """
    if not isinstance(value, str):
        raise InvalidKeyMaterialError(field, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidKeyMaterialError(field, "is empty")
    stripped = value.strip()
    if not stripped:
        raise InvalidKeyMaterialError(field, "is only whitespace")
    if stripped != value:
        raise InvalidKeyMaterialError(field, "has leading or trailing whitespace")
    low, high = _LENGTHS[field]
    if not low <= len(value) <= high:
        raise InvalidKeyMaterialError(
            field, f"is {len(value)} characters long; expected {low} to {high}"
        )
    allowed = _ALLOWED.get(field, _PRINTABLE)
    for position, char in enumerate(value):
        if char not in allowed:
            raise InvalidKeyMaterialError(
                field, f"has a non-printable or non-ASCII character at position {position}"
            )
    return value


def check_owner(owner: object) -> str:
    if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
        raise InvalidIdentifierError(
            "owner must be 1-128 characters of letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return owner


def check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise InvalidIdentifierError("key_id must be 32 lowercase hex characters")
    return key_id


@cache
def _required_optional_fields(exchange: str) -> tuple[str, ...]:
    """Which of password and uid the exchange's ccxt class declares as required."""
    import ccxt

    required = getattr(ccxt, exchange)().requiredCredentials
    return tuple(field for field in ("password", "uid") if required.get(field))


def check_required_fields(exchange: str, present: dict[str, bool]) -> None:
    """InvalidKeyMaterialError when `exchange` needs a password or uid that is missing."""
    for field in _required_optional_fields(exchange):
        if not present[field]:
            raise InvalidKeyMaterialError(
                field, f"is required by {exchange} (ccxt requiredCredentials)"
            )


@cache
def _ccxt_exchanges() -> frozenset[str]:
    # Imported on first use: ccxt takes half a second to import.
    import ccxt

    return frozenset(ccxt.exchanges)


def check_exchange(exchange: object) -> str:
    """A ccxt exchange id (`binance`, `binanceusdm`, `okx`...), else UnknownExchangeError."""
    known = _ccxt_exchanges()
    if isinstance(exchange, str) and exchange in known:
        return exchange
    if not isinstance(exchange, str):
        raise UnknownExchangeError(
            f"exchange must be a ccxt exchange id string, not {type(exchange).__name__}"
        )
    close = difflib.get_close_matches(exchange, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownExchangeError(
        f"unknown exchange id {exchange[:64]!r}: not one of ccxt's {len(known)} exchanges{hint}"
    )
