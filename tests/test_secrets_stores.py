"""The SecretStore contract on every backend, then the Vault backend's own behaviour.

The Vault backend runs against a real OpenBao (the Vault API; `tests/openbao_service.py`
starts `bao server -dev` for the session), each test under a path prefix of its own. What
reached the server is read from its raw audit log. The least-privilege policies are tested in
`tests/test_vault_policies.py`.
"""

from __future__ import annotations

import base64
import dataclasses
import socket
import uuid

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
from connectors.secrets.vault_setup import executor_role
from tests.openbao_service import EXECUTOR_OWNER
from tests.vault_stores import raw_record, vault_store_on, write_raw


def _canary_credentials() -> ExchangeCredentials:
    return ExchangeCredentials(
        api_key="canary-api-" + uuid.uuid4().hex,
        secret="canary-secret-" + uuid.uuid4().hex,
        password="canary-pw-" + uuid.uuid4().hex[:8],
        uid="canary-uid-" + uuid.uuid4().hex[:8],
    )


@pytest.fixture(params=["local", "vault"])
def store(request, tmp_path, openbao):
    if request.param == "local":
        return LocalSecretStore(tmp_path / "keys.json", MasterKey.generate())
    return vault_store_on(openbao)


@pytest.fixture
def vault_store(openbao):
    return vault_store_on(openbao)


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


def test_vault_holds_only_wrapped_keys_and_ciphertext(vault_store):
    credentials = _canary_credentials()
    info = vault_store.put("alice", "okx", credentials)
    record = raw_record(vault_store, "alice", "okx", info.key_id)
    assert record["wrapped_key"].startswith("vault:v")
    stored = repr(record).encode()
    for canary in credentials.as_tuple():
        assert scan_bytes(stored, canary) == []


def test_no_plaintext_ever_reaches_vault(openbao):
    """The raw audit log holds every request and response body: no credential is in any."""
    store = vault_store_on(openbao)
    credentials = _canary_credentials()
    info = store.put("alice", "kucoin", credentials)
    assert store.get("alice", "kucoin", info.key_id) == credentials
    store.list("alice")
    store.rotate_wrapping_key()
    audit = openbao.audit_log.read_bytes()
    assert info.key_id.encode() in audit  # the log did record these requests
    for canary in credentials.as_tuple():
        assert scan_bytes(audit, canary) == []


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_vault_record_with_a_flipped_byte_fails_authentication(vault_store, field):
    info = vault_store.put("alice", "binance", _canary_credentials())
    record = raw_record(vault_store, "alice", "binance", info.key_id)
    raw = bytearray(base64.b64decode(record[field]))
    raw[-1] ^= 0x80
    write_raw(
        vault_store,
        "alice",
        "binance",
        info.key_id,
        {**record, field: base64.b64encode(raw).decode()},
    )
    with pytest.raises(TamperedRecordError, match="failed authentication"):
        vault_store.get("alice", "binance", info.key_id)


@pytest.mark.parametrize("value", ["not base64!", 12])
def test_vault_record_whose_nonce_is_not_base64_is_refused_as_tampered(vault_store, value):
    info = vault_store.put("alice", "binance", _canary_credentials())
    record = raw_record(vault_store, "alice", "binance", info.key_id)
    write_raw(vault_store, "alice", "binance", info.key_id, {**record, "nonce": value})
    with pytest.raises(TamperedRecordError, match="nonce is not"):
        vault_store.get("alice", "binance", info.key_id)


def test_vault_record_copied_to_another_owner_or_exchange_fails_authentication(vault_store):
    info = vault_store.put("alice", "binance", _canary_credentials())
    record = raw_record(vault_store, "alice", "binance", info.key_id)
    for owner, exchange in (("mallory", "binance"), ("alice", "binanceusdm")):
        write_raw(
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
    record = raw_record(vault_store, "alice", "binance", info.key_id)
    prefix, _, body = record["wrapped_key"].rpartition(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 0x01
    altered = f"{prefix}:{base64.b64encode(raw).decode()}"
    write_raw(vault_store, "alice", "binance", info.key_id, {**record, "wrapped_key": altered})
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
        raw_record(vault_store, o, e, k)["wrapped_key"].split(":")[1]
        for k, (o, e, _) in placed.items()
    }
    assert len(versions) == 2  # a mix of old and new wrappings...
    for key_id, (owner, exchange, credentials) in placed.items():
        assert vault_store.get(owner, exchange, key_id) == credentials  # ...that all decrypt
    assert vault_store.rotate_wrapping_key() == len(placed)
    versions = {
        raw_record(vault_store, o, e, k)["wrapped_key"].split(":")[1]
        for k, (o, e, _) in placed.items()
    }
    assert len(versions) == 1
    for key_id, (owner, exchange, credentials) in placed.items():
        assert vault_store.get(owner, exchange, key_id) == credentials


def test_approle_login(openbao):
    credentials = _canary_credentials()
    info = VaultSecretStore.from_settings(openbao.root_settings()).put(
        EXECUTOR_OWNER, "kraken", credentials
    )
    settings = openbao.role_settings(executor_role(EXECUTOR_OWNER))
    assert VaultSecretStore.from_settings(settings).get(
        EXECUTOR_OWNER, "kraken", info.key_id
    ) == credentials
    with pytest.raises(SecretBackendError, match="invalid role or secret ID"):
        connect_vault(dataclasses.replace(settings, secret_id=str(uuid.uuid4())))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_vault_configuration_errors_are_clear_at_start_up(openbao):
    with pytest.raises(SecretBackendError, match="no Vault credentials"):
        connect_vault(VaultSettings(url=openbao.url))
    with pytest.raises(SecretBackendError, match=r"refused login .*permission denied.*policy"):
        connect_vault(VaultSettings(url=openbao.url, token="hvs.not-a-token"))
    with pytest.raises(SecretBackendError, match="is unreachable during login"):
        connect_vault(VaultSettings(url=f"http://127.0.0.1:{_closed_port()}", token="t", timeout=2))
    with pytest.raises(SecretBackendError, match="VAULT_ADDR is not set"):
        VaultSettings.from_env({})
    missing_key = VaultSecretStore(
        connect_vault(openbao.root_settings()),
        transit_key="no-such-key",
        path_prefix=f"qf-{uuid.uuid4().hex[:8]}",
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


def test_the_environment_settings_log_in(openbao):
    client = connect_vault(
        VaultSettings.from_env({"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.root_token})
    )
    assert client.is_authenticated()
