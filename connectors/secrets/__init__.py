"""Exchange API keys at rest: one `SecretStore` interface, two backends.

- `LocalSecretStore`: the embedded default, an AES-256-GCM encrypted file under a master
  key from `QUOTEFLOW_MASTER_KEY` or a 0600 `QUOTEFLOW_MASTER_KEY_FILE`.
- `VaultSecretStore`: HashiCorp Vault, KV v2 records with Transit envelope encryption.

Design and threat model: docs/secrets.md.
"""

from connectors.secrets.credentials import ExchangeCredentials, KeyRecordInfo, mask_api_key
from connectors.secrets.errors import (
    AmbiguousKeyError,
    CorruptStoreError,
    InvalidIdentifierError,
    InvalidKeyMaterialError,
    MasterKeyError,
    RecordNotFoundError,
    SecretBackendError,
    SecretStoreError,
    TamperedRecordError,
    UnknownExchangeError,
    WrongMasterKeyError,
)
from connectors.secrets.local_store import LocalSecretStore
from connectors.secrets.master_key import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    MasterKey,
    load_master_key,
    read_master_key_file,
)
from connectors.secrets.store import SecretStore
from connectors.secrets.vault_store import VaultSecretStore, VaultSettings, connect_vault

__all__ = [
    "MASTER_KEY_ENV",
    "MASTER_KEY_FILE_ENV",
    "AmbiguousKeyError",
    "CorruptStoreError",
    "ExchangeCredentials",
    "InvalidIdentifierError",
    "InvalidKeyMaterialError",
    "KeyRecordInfo",
    "LocalSecretStore",
    "MasterKey",
    "MasterKeyError",
    "RecordNotFoundError",
    "SecretBackendError",
    "SecretStore",
    "SecretStoreError",
    "TamperedRecordError",
    "UnknownExchangeError",
    "VaultSecretStore",
    "VaultSettings",
    "WrongMasterKeyError",
    "connect_vault",
    "load_master_key",
    "mask_api_key",
    "read_master_key_file",
]
