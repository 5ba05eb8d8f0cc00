"""Every field stored beside a key's ciphertext is bound into its AEAD associated data.

The owner, exchange, id, masked api key, the password/uid flags and the creation time were
once outside the encryption and could be edited undetected; now any edit fails
authentication, on both backends (the local file; Vault on a real OpenBao). Stores written
before (schema 1) are still read, and the local file is upgraded when it is opened.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from connectors.secrets import (
    CorruptStoreError,
    ExchangeCredentials,
    LocalSecretStore,
    MasterKey,
    TamperedRecordError,
)
from connectors.secrets.local_store import _Keys
from connectors.secrets.sealing import legacy_record_aad, seal
from tests.vault_stores import raw_record, vault_store_on, write_raw

EDITS = [
    ("api_key_masked", "AAAA…ZZZZ"),
    ("created_at", "2020-01-01T00:00:00Z"),
    ("has_password", True),
    ("has_uid", True),
]


def _credentials() -> ExchangeCredentials:
    return ExchangeCredentials("key-" + uuid.uuid4().hex, "secret-" + uuid.uuid4().hex)


@pytest.mark.parametrize(("field", "value"), EDITS)
def test_an_edited_field_of_a_local_record_fails_authentication(tmp_path, field, value):
    master = MasterKey.generate()
    path = tmp_path / "keys.json"
    store = LocalSecretStore(path, master)
    info = store.put("alice", "binance", _credentials())
    state = json.loads(path.read_text())
    state["records"][0][field] = value
    path.write_text(json.dumps(state))
    with pytest.raises(TamperedRecordError, match="failed authentication"):
        store.get("alice", "binance", info.key_id)
    with pytest.raises(TamperedRecordError):
        store.list("alice")  # nothing false is shown either


def test_a_version_1_store_is_read_and_upgraded_on_open(tmp_path):
    master = MasterKey.generate()
    path = tmp_path / "keys.json"
    credentials = _credentials()
    info = LocalSecretStore(path, master).put("alice", "binance", credentials)
    state = json.loads(path.read_text())  # rewritten as the old code wrote it
    keys = _Keys(master, base64.b64decode(state["salt"]))
    nonce, ciphertext = seal(keys.data, credentials,
                             legacy_record_aad("alice", "binance", info.key_id))
    state["version"] = 1
    state["records"][0].update(nonce=base64.b64encode(nonce).decode(),
                               ciphertext=base64.b64encode(ciphertext).decode())
    path.write_text(json.dumps(state))
    store = LocalSecretStore(path, master)
    assert json.loads(path.read_text())["version"] == 2
    assert store.get("alice", "binance") == credentials
    upgraded = json.loads(path.read_text())
    upgraded["records"][0]["created_at"] = "2020-01-01T00:00:00Z"
    path.write_text(json.dumps(upgraded))
    with pytest.raises(TamperedRecordError):
        store.get("alice", "binance")


def test_a_store_without_its_salt_is_a_clear_error(tmp_path):
    path = tmp_path / "keys.json"
    LocalSecretStore(path, MasterKey.generate()).put("alice", "binance", _credentials())
    state = json.loads(path.read_text())
    del state["salt"]
    path.write_text(json.dumps(state))
    with pytest.raises(CorruptStoreError, match="lacks its salt"):
        LocalSecretStore(path, MasterKey.generate())


@pytest.mark.integration
def test_an_edited_field_of_a_vault_record_fails_authentication(openbao):
    store = vault_store_on(openbao)
    info = store.put("alice", "binance", _credentials())
    record = raw_record(store, "alice", "binance", info.key_id)
    for field, value in EDITS:
        write_raw(store, "alice", "binance", info.key_id, {**record, field: value})
        with pytest.raises(TamperedRecordError, match="failed authentication"):
            store.get("alice", "binance", info.key_id)
        with pytest.raises(TamperedRecordError):
            store.list("alice")
    write_raw(store, "alice", "binance", info.key_id, record)
    assert store.list("alice")[0] == info
