"""What can go wrong with stored exchange keys, one exception per cause.

Every message names the field, record or file involved and what to do about it, and never
contains key material: these errors end up in logs and API responses.
"""

from __future__ import annotations


class SecretStoreError(Exception):
    """Base of every secret-store failure."""


class InvalidKeyMaterialError(SecretStoreError, ValueError):
    """An api key, secret, password or uid that cannot be a real exchange credential."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class InvalidIdentifierError(SecretStoreError, ValueError):
    """A malformed owner or key id (they become file records and Vault paths)."""


class UnknownExchangeError(SecretStoreError, ValueError):
    """An exchange id that ccxt does not know."""


class RecordNotFoundError(SecretStoreError, KeyError):
    """No such record for this owner (another owner's records are indistinguishable from none)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AmbiguousKeyError(SecretStoreError, LookupError):
    """Several keys for one owner and exchange, and the caller did not say which."""


class MasterKeyError(SecretStoreError):
    """The master key is missing, malformed or stored unsafely."""


class WrongMasterKeyError(SecretStoreError):
    """The master key does not open this store (checked before anything is written)."""


class TamperedRecordError(SecretStoreError):
    """A record failed authentication: its ciphertext or a field stored beside it (owner,
    exchange, id, masked key, flags, creation time) was altered."""


class CorruptStoreError(SecretStoreError):
    """The store file is not a store this code wrote (truncated, edited, other format)."""


class SecretBackendError(SecretStoreError):
    """The backend service (Vault) refused or could not be reached."""
