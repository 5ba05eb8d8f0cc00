"""The SecretStore contract on every backend, then the Vault backend's own behaviour.

No Vault server can be installed on the project's machines: the Vault backend runs against
`tests/vault_standin.py`, a local HTTP server that follows Vault's documented KV v2, Transit,
AppRole and token HTTP API (request and response JSON as in Vault's API docs and hvac's request
code). When VAULT_ADDR and VAULT_TOKEN are set, the same tests also run against that real Vault
(KV v2 mounted at QUOTEFLOW_VAULT_KV_MOUNT, default `secret`; Transit at
QUOTEFLOW_VAULT_TRANSIT_MOUNT, default `transit`), under a fresh path prefix removed afterwards.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import uuid

import hvac
import pytest

from connectors.secrets import (
    AmbiguousKeyError,
    ExchangeCredentials,
    InvalidIdentifierError,
    InvalidKeyMaterialError,
    LocalSecretStore,
    MasterKey,
    RecordNotFoundError,
    SecretBackendError,
    TamperedRecordError,
    UnknownExchangeError,
    VaultSecretStore,
    VaultSettings,
    connect_vault,
)
from connectors.secrets.leak_scan import scan_bytes
from tests.vault_standin import VaultStandin

REAL_VAULT = bool(os.environ.get("VAULT_ADDR") and os.environ.get("VAULT_TOKEN"))
needs_real_vault = pytest.mark.skipif(not REAL_VAULT, reason="VAULT_ADDR/VAULT_TOKEN not set")


def _canary_credentials() -> ExchangeCredentials:
    return ExchangeCredentials(
        api_key="canary-api-" + uuid.uuid4().hex,
        secret="canary-secret-" + uuid.uuid4().hex,
        password="canary-pw-" + uuid.uuid4().hex[:8],
        uid="canary-uid-" + uuid.uuid4().hex[:8],
    )


@pytest.fixture(scope="module")
def standin():
    with VaultStandin() as server:
        yield server


def _standin_store(standin: VaultStandin) -> VaultSecretStore:
    settings = VaultSettings(
        url=standin.url, token=standin.root_token, path_prefix=f"qf-{uuid.uuid4().hex[:8]}"
    )
    store = VaultSecretStore.from_settings(settings)
    store.ensure_transit_key()
    return store


@pytest.fixture
def real_vault_store():
    if not REAL_VAULT:
        pytest.skip("VAULT_ADDR/VAULT_TOKEN not set: no real Vault to test against")
    settings = dataclasses.replace(
        VaultSettings.from_env(os.environ), path_prefix=f"quoteflow-test-{uuid.uuid4().hex[:8]}"
    )
    store = VaultSecretStore.from_settings(settings)
    store.ensure_transit_key()
    yield store
    client = connect_vault(settings)
    for owner in _list(client, settings, ""):
        for exchange in _list(client, settings, owner):
            for key_id in _list(client, settings, f"{owner}/{exchange}"):
                client.secrets.kv.v2.delete_metadata_and_all_versions(
                    path=f"{settings.path_prefix}/{owner}/{exchange}/{key_id}",
                    mount_point=settings.kv_mount,
                )


def _list(client: hvac.Client, settings: VaultSettings, folder: str) -> list[str]:
    try:
        response = client.secrets.kv.v2.list_secrets(
            path=f"{settings.path_prefix}/{folder}".rstrip("/") + "/",
            mount_point=settings.kv_mount,
        )
    except hvac.exceptions.InvalidPath:
        return []
    return [key.rstrip("/") for key in response["data"]["keys"]]


@pytest.fixture(params=["local", "vault-standin", "vault-real"])
def store(request, tmp_path, standin):
    if request.param == "local":
        return LocalSecretStore(tmp_path / "keys.json", MasterKey.generate())
    if request.param == "vault-standin":
        return _standin_store(standin)
    return request.getfixturevalue("real_vault_store")


@pytest.fixture(params=["vault-standin", "vault-real"])
def vault_store(request, standin):
    if request.param == "vault-standin":
        return _standin_store(standin)
    return request.getfixturevalue("real_vault_store")


# -- the contract, on every backend -------------------------------------------------------


def test_round_trip_with_all_fields_and_masked_listing(store):
    credentials = _canary_credentials()
    info = store.put("alice", "okx", credentials)
    assert info.api_key_masked == f"{credentials.api_key[:4]}…{credentials.api_key[-4:]}"
    assert (info.owner, info.exchange, info.has_password, info.has_uid) == (
        "alice",
        "okx",
        True,
        True,
    )
    assert store.get("alice", "okx") == credentials
    assert store.get("alice", "okx", info.key_id) == credentials
    assert store.list("alice") == [info]
    assert credentials.secret not in repr(store.list("alice"))


def test_owners_never_see_each_others_keys(store):
    alice = store.put("alice", "binance", _canary_credentials())
    bob_credentials = _canary_credentials()
    bob = store.put("bob", "binance", bob_credentials)
    assert [info.key_id for info in store.list("alice")] == [alice.key_id]
    assert [info.key_id for info in store.list("bob")] == [bob.key_id]
    assert store.list("carol") == []
    with pytest.raises(RecordNotFoundError, match="owner alice has no binance key"):
        store.get("alice", "binance", bob.key_id)
    with pytest.raises(RecordNotFoundError):
        store.get("carol", "binance")
    with pytest.raises(RecordNotFoundError):
        store.delete("alice", "binance", bob.key_id)
    assert store.get("bob", "binance", bob.key_id) == bob_credentials


def test_several_keys_per_exchange_need_a_key_id(store):
    first = store.put("alice", "binance", _canary_credentials())
    second = store.put("alice", "binance", _canary_credentials())
    store.put("alice", "kraken", _canary_credentials())
    with pytest.raises(AmbiguousKeyError, match="pass key_id"):
        store.get("alice", "binance")
    listed = store.list("alice")
    assert [info.exchange for info in listed] == ["binance", "binance", "kraken"]
    assert {first.key_id, second.key_id} == {info.key_id for info in listed[:2]}


def test_delete_removes_for_good(store):
    info = store.put("alice", "binance", _canary_credentials())
    store.delete("alice", "binance", info.key_id)
    with pytest.raises(RecordNotFoundError):
        store.get("alice", "binance", info.key_id)
    with pytest.raises(RecordNotFoundError):
        store.delete("alice", "binance", info.key_id)
    assert store.list("alice") == []


def test_bad_identifiers_are_refused_before_the_backend_is_touched(store):
    credentials = _canary_credentials()
    with pytest.raises(UnknownExchangeError, match="did you mean"):
        store.put("alice", "krakken", credentials)
    with pytest.raises(InvalidIdentifierError):
        store.put("alice/../bob", "kraken", credentials)
    with pytest.raises(InvalidIdentifierError):
        store.get("alice", "kraken", "../other")
    with pytest.raises(TypeError):
        store.put("alice", "kraken", credentials.to_ccxt_config())
    no_passphrase = ExchangeCredentials(credentials.api_key, credentials.secret)
    with pytest.raises(InvalidKeyMaterialError, match="password is required by okx"):
        store.put("alice", "okx", no_passphrase)
    with pytest.raises(InvalidKeyMaterialError, match="uid is required by coinmate"):
        store.put("alice", "coinmate", no_passphrase)
    assert store.list("alice") == []


# -- the Vault backend ------------------------------------------------------------------


def _raw_record(store: VaultSecretStore, owner: str, exchange: str, key_id: str) -> dict:
    return store._read(owner, exchange, key_id)[0]


def _write_raw(store: VaultSecretStore, owner: str, exchange: str, key_id: str, record: dict):
    store._kv.create_or_update_secret(
        path=store._path(owner, exchange, key_id), secret=record, mount_point=store._kv_mount
    )


def test_vault_holds_only_wrapped_keys_and_ciphertext(vault_store):
    credentials = _canary_credentials()
    info = vault_store.put("alice", "okx", credentials)
    record = _raw_record(vault_store, "alice", "okx", info.key_id)
    assert record["wrapped_key"].startswith("vault:v")
    stored = repr(record).encode()
    for canary in credentials.as_tuple():
        assert scan_bytes(stored, canary) == []


def test_no_plaintext_ever_travels_to_the_standin(standin):
    store = _standin_store(standin)
    credentials = _canary_credentials()
    info = store.put("alice", "kucoin", credentials)
    store.get("alice", "kucoin", info.key_id)
    store.list("alice")
    sent = b"\n".join(body for _, _, body in standin.requests_seen)
    for canary in credentials.as_tuple():
        assert scan_bytes(sent, canary) == []
        assert scan_bytes(repr(standin.kv).encode(), canary) == []


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_vault_record_with_a_flipped_byte_fails_authentication(vault_store, field):
    info = vault_store.put("alice", "binance", _canary_credentials())
    record = _raw_record(vault_store, "alice", "binance", info.key_id)
    raw = bytearray(base64.b64decode(record[field]))
    raw[-1] ^= 0x80
    _write_raw(
        vault_store,
        "alice",
        "binance",
        info.key_id,
        {**record, field: base64.b64encode(raw).decode()},
    )
    with pytest.raises(TamperedRecordError, match="failed authentication"):
        vault_store.get("alice", "binance", info.key_id)


def test_vault_record_copied_to_another_owner_or_exchange_fails_authentication(vault_store):
    info = vault_store.put("alice", "binance", _canary_credentials())
    record = _raw_record(vault_store, "alice", "binance", info.key_id)
    for owner, exchange in (("mallory", "binance"), ("alice", "binanceusdm")):
        _write_raw(
            vault_store,
            owner,
            exchange,
            info.key_id,
            {**record, "owner": owner, "exchange": exchange},
        )
        with pytest.raises(TamperedRecordError, match="failed authentication"):
            vault_store.get(owner, exchange, info.key_id)


def test_vault_record_with_an_altered_wrapped_key_is_refused_by_transit(vault_store):
    info = vault_store.put("alice", "binance", _canary_credentials())
    record = _raw_record(vault_store, "alice", "binance", info.key_id)
    prefix, _, body = record["wrapped_key"].rpartition(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 0x01
    altered = f"{prefix}:{base64.b64encode(raw).decode()}"
    _write_raw(vault_store, "alice", "binance", info.key_id, {**record, "wrapped_key": altered})
    with pytest.raises(TamperedRecordError, match="Transit refused to unwrap"):
        vault_store.get("alice", "binance", info.key_id)


def test_vault_put_never_overwrites_an_existing_record(vault_store, monkeypatch):
    first = _canary_credentials()
    info = vault_store.put("alice", "binance", first)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(info.key_id))
    with pytest.raises(SecretBackendError, match="check-and-set"):
        vault_store.put("alice", "binance", _canary_credentials())
    assert vault_store.get("alice", "binance", info.key_id) == first


def test_wrapping_key_rotation_interrupted_then_finished_loses_nothing(vault_store):
    placed = {}
    for owner, exchange in (("alice", "binance"), ("alice", "okx"), ("bob", "binance")):
        credentials = _canary_credentials()
        placed[vault_store.put(owner, exchange, credentials).key_id] = (
            owner,
            exchange,
            credentials,
        )

    def crash_after_first(done, total):
        if done == 1:
            raise ConnectionError("process killed")

    with pytest.raises(ConnectionError):
        vault_store.rotate_wrapping_key(progress=crash_after_first)
    versions = {
        _raw_record(vault_store, o, e, k)["wrapped_key"].split(":")[1]
        for k, (o, e, _) in placed.items()
    }
    assert len(versions) == 2  # a mix of old and new wrappings...
    for key_id, (owner, exchange, credentials) in placed.items():
        assert vault_store.get(owner, exchange, key_id) == credentials  # ...that all decrypt
    assert vault_store.rotate_wrapping_key() == len(placed)
    versions = {
        _raw_record(vault_store, o, e, k)["wrapped_key"].split(":")[1]
        for k, (o, e, _) in placed.items()
    }
    assert len(versions) == 1
    for key_id, (owner, exchange, credentials) in placed.items():
        assert vault_store.get(owner, exchange, key_id) == credentials


def test_approle_login(standin):
    settings = VaultSettings(url=standin.url, role_id=standin.role_id, secret_id=standin.secret_id)
    store = VaultSecretStore.from_settings(
        dataclasses.replace(settings, path_prefix="approle-test")
    )
    store.ensure_transit_key()
    credentials = _canary_credentials()
    info = store.put("alice", "kraken", credentials)
    assert store.get("alice", "kraken", info.key_id) == credentials
    with pytest.raises(SecretBackendError, match="invalid role or secret ID"):
        connect_vault(dataclasses.replace(settings, secret_id="wrong"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_vault_configuration_errors_are_clear_at_start_up(standin):
    with pytest.raises(SecretBackendError, match="no Vault credentials"):
        connect_vault(VaultSettings(url=standin.url))
    with pytest.raises(SecretBackendError, match=r"refused login .*permission denied.*policy"):
        connect_vault(VaultSettings(url=standin.url, token="hvs.not-a-token"))
    with pytest.raises(SecretBackendError, match="is unreachable during login"):
        connect_vault(VaultSettings(url=f"http://127.0.0.1:{_closed_port()}", token="t", timeout=2))
    with pytest.raises(SecretBackendError, match="VAULT_ADDR is not set"):
        VaultSettings.from_env({})
    missing_key = VaultSecretStore(
        connect_vault(VaultSettings(url=standin.url, token=standin.root_token)),
        transit_key="no-such-key",
    )
    with pytest.raises(SecretBackendError, match="encryption key not found"):
        missing_key.put("alice", "binance", _canary_credentials())
    assert missing_key.list("alice") == []


def test_settings_from_the_environment_keep_secrets_out_of_repr():
    settings = VaultSettings.from_env(
        {
            "VAULT_ADDR": "https://vault.internal:8200",
            "VAULT_ROLE_ID": "role",
            "VAULT_SECRET_ID": "secret-id-value",
            "VAULT_TOKEN": "hvs.token-value",
            "QUOTEFLOW_VAULT_KV_MOUNT": "kv",
            "VAULT_CACERT": "/etc/ssl/vault-ca.pem",
        }
    )
    assert (settings.kv_mount, settings.transit_mount, settings.verify) == (
        "kv",
        "transit",
        "/etc/ssl/vault-ca.pem",
    )
    assert "secret-id-value" not in repr(settings) and "hvs.token-value" not in repr(settings)


@needs_real_vault
def test_real_vault_is_reachable_with_the_environment_settings():
    client = connect_vault(VaultSettings.from_env(os.environ))
    assert client.is_authenticated()
