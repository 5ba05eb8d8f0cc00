"""The Vault secret store on the session's OpenBao (`tests/openbao_service.py`), for the
secret store tests: a store of its own per test, and its records read and written raw, as
someone with write access to the KV mount could, to tamper with them.
"""

from __future__ import annotations

import uuid

from connectors.secrets import VaultSecretStore
from tests.openbao_service import OpenBao


def vault_store_on(openbao: OpenBao) -> VaultSecretStore:
    """A store under a fresh path prefix, logged in with the root token."""
    return VaultSecretStore.from_settings(
        openbao.root_settings(path_prefix=f"qf-{uuid.uuid4().hex[:8]}")
    )


def raw_record(store: VaultSecretStore, owner: str, exchange: str, key_id: str) -> dict:
    """The stored record of a key, as the KV mount holds it (sealed)."""
    return store._read(owner, exchange, key_id)[0]


def write_raw(store: VaultSecretStore, owner: str, exchange: str, key_id: str, record: dict):
    """Replace a key's stored record with `record`, bypassing the store's sealing."""
    store._kv.create_or_update_secret(
        path=store._path(owner, exchange, key_id), secret=record, mount_point=store._kv_mount
    )
