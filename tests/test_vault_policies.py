"""docs/secrets.md's least-privilege policies, applied to a real OpenBao and tried by each role.

The session's OpenBao (`tests/openbao_service.py`) was set up by `scripts/services/openbao.sh`
with `connectors/secrets/vault_setup.py`: the API's, the key admin's and owner alice's
executor AppRoles. Each test logs in as one of them and is refused what its policy does not
grant, by the server's policy engine (HTTP 403), not by our code.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from connectors.secrets import (
    ExchangeCredentials,
    SecretBackendError,
    VaultSecretStore,
    VaultSettings,
    connect_vault,
)
from connectors.secrets.vault_setup import (
    API_ROLE,
    KEY_ADMIN_ROLE,
    api_policy,
    executor_policy,
    executor_role,
    key_admin_policy,
)
from tests.openbao_service import EXECUTOR_OWNER, OpenBao

DOCS = Path(__file__).resolve().parents[1] / "docs" / "secrets.md"


def _credentials() -> ExchangeCredentials:
    return ExchangeCredentials("api-" + uuid.uuid4().hex, "secret-" + uuid.uuid4().hex)


def _store(settings: VaultSettings) -> VaultSecretStore:
    return VaultSecretStore.from_settings(settings)


@pytest.fixture
def root(openbao: OpenBao) -> VaultSecretStore:
    return _store(openbao.root_settings())


def test_the_documented_policies_are_the_applied_ones(openbao):
    """docs/secrets.md shows each policy exactly as vault_setup renders and applies it."""
    blocks = re.findall(r"```hcl\n(.*?)```", DOCS.read_text(), re.S)
    settings = openbao.root_settings()
    rendered = {
        API_ROLE: api_policy(settings),
        executor_role("OWNER"): executor_policy(settings, "OWNER"),
        KEY_ADMIN_ROLE: key_admin_policy(settings),
    }
    documented = {block.splitlines()[0].removeprefix("# ").split(":")[0]: "".join(
        line + "\n" for line in block.splitlines()[1:]) for block in blocks}
    assert documented.keys() >= rendered.keys() - {executor_role("OWNER")}
    assert documented[API_ROLE] == rendered[API_ROLE]
    assert documented[KEY_ADMIN_ROLE] == rendered[KEY_ADMIN_ROLE]
    assert documented["quoteflow-executor-<owner>"] == rendered[executor_role("OWNER")].replace(
        "/OWNER/", "/<owner>/")
    client = connect_vault(settings)
    # The k8s configure script (tests/test_k8s_openbao.py, same server) applies the same
    # policies from its generated files, which start with a "generated" comment.
    applied = client.sys.read_policy(API_ROLE)["data"]["rules"]
    assert _without_comments(applied) == _without_comments(rendered[API_ROLE])


def _without_comments(rules: str) -> str:
    return "".join(line + "\n" for line in rules.splitlines() if not line.startswith("#"))


def test_the_api_adds_lists_and_deletes_but_cannot_decrypt(openbao, root):
    api = _store(openbao.role_settings(API_ROLE))
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    info = api.put(owner, "binance", _credentials())
    assert api.list(owner) == [info]
    with pytest.raises(SecretBackendError, match=r"refused unwrapping the data key \(permissi"):
        api.get(owner, "binance", info.key_id)
    record = root._read(owner, "binance", info.key_id)[0]
    client = connect_vault(openbao.role_settings(API_ROLE))
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.transit.decrypt_data("quoteflow-exchange-keys", record["wrapped_key"])
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.transit.rotate_key("quoteflow-exchange-keys")
    api.delete(owner, "binance", info.key_id)
    assert root.list(owner) == []


def test_the_executor_reads_its_owners_keys_and_nothing_else(openbao, root):
    mine = _credentials()
    info = root.put(EXECUTOR_OWNER, "okx", ExchangeCredentials(mine.api_key, mine.secret, "pw"))
    other = f"bob-{uuid.uuid4().hex[:8]}"
    others = root.put(other, "okx", ExchangeCredentials(mine.api_key, mine.secret, "pw"))
    executor = _store(openbao.role_settings(executor_role(EXECUTOR_OWNER)))
    assert executor.get(EXECUTOR_OWNER, "okx", info.key_id).secret == mine.secret
    assert info in executor.list(EXECUTOR_OWNER)
    with pytest.raises(SecretBackendError, match=r"refused reading the record \(permission d"):
        executor.get(other, "okx", others.key_id)
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.list(other)
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.put(EXECUTOR_OWNER, "okx", ExchangeCredentials(mine.api_key, mine.secret, "p"))
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.delete(EXECUTOR_OWNER, "okx", info.key_id)
    with pytest.raises(SecretBackendError, match="permission denied"):
        executor.rotate_wrapping_key()
    assert root.get(EXECUTOR_OWNER, "okx", info.key_id).secret == mine.secret


def test_the_key_admin_rotates_and_rewraps_but_cannot_decrypt(openbao, root):
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    credentials = _credentials()
    info = root.put(owner, "kraken", credentials)
    before = root._read(owner, "kraken", info.key_id)[0]["wrapped_key"]
    admin = _store(openbao.role_settings(KEY_ADMIN_ROLE))
    assert admin.rotate_wrapping_key() >= 1
    after = root._read(owner, "kraken", info.key_id)[0]["wrapped_key"]
    assert after != before and after.split(":")[1] != before.split(":")[1]
    assert root.get(owner, "kraken", info.key_id) == credentials
    with pytest.raises(SecretBackendError, match="permission denied"):
        admin.get(owner, "kraken", info.key_id)
    with pytest.raises(SecretBackendError, match="permission denied"):
        admin.put(owner, "kraken", credentials)


def test_an_executor_role_for_an_owner_vault_would_rename_gets_a_stable_digest_name():
    assert executor_role("alice") == "quoteflow-executor-alice"
    named = executor_role("Alice@Example.com")
    assert named == executor_role("Alice@Example.com") != executor_role("alice@example.com")
    assert re.fullmatch(r"quoteflow-executor-[0-9a-f]{24}", named)


def test_the_api_and_the_executor_open_the_store_from_config_and_approle_env(openbao):
    """As `./dev stack up` runs them: `[secrets] backend = "vault"` and each process's own
    AppRole in VAULT_ROLE_ID / VAULT_SECRET_ID (the `<role>.env` files vault_setup writes)."""
    from quoteflow.api.services import open_secret_store
    from quoteflow.config import SecretsConfig

    config = SecretsConfig(backend="vault", vault_addr=openbao.url,
                           vault_transit_key="quoteflow-exchange-keys")

    def environ(role: str) -> dict[str, str]:
        text = (openbao.directory / "approle" / f"{role}.env").read_text()
        return dict(line.split("=", 1) for line in text.splitlines())

    credentials = _credentials()
    info = open_secret_store(config, environ(API_ROLE)).put(EXECUTOR_OWNER, "bybit", credentials)
    executor = open_secret_store(config, environ(executor_role(EXECUTOR_OWNER)))
    assert executor.get(EXECUTOR_OWNER, "bybit", info.key_id) == credentials
