"""Vault / OpenBao set-up for the secret store: mounts, the Transit key, policies, AppRoles.

One place renders the least-privilege policies of docs/secrets.md from the store's settings
(mounts, Transit key, path prefix), and applies them with an admin token:

- `quoteflow-api`: adds, lists (masked) and deletes records; cannot decrypt any.
- `quoteflow-executor-<owner>`: reads and decrypts ONE owner's records; cannot write, and
  cannot read another owner's (the executor trades for one owner: `[execute] owner`).
- `quoteflow-key-admin`: rotates the Transit key and rewraps; cannot decrypt.

Each policy gets an AppRole of the same name; `approle_credentials` hands out a role id and a
fresh secret id for it. Everything here is idempotent: run it again after an upgrade.

    python -m connectors.secrets.vault_setup --env-dir DIR [--executor-owner OWNER ...]

reads VAULT_ADDR / VAULT_TOKEN (an admin token) and QUOTEFLOW_VAULT_*, applies all of it and
writes `DIR/<role>.env` (mode 0600) with VAULT_ADDR, VAULT_ROLE_ID and VAULT_SECRET_ID.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hvac

from connectors.secrets.errors import SecretBackendError
from connectors.secrets.validation import check_owner
from connectors.secrets.vault_store import VaultSecretStore, VaultSettings, _vault_errors

API_ROLE = "quoteflow-api"
KEY_ADMIN_ROLE = "quoteflow-key-admin"
_EXECUTOR_ROLE = "quoteflow-executor-"
# Vault lowercases policy names; an owner that would not survive that is named by its digest.
_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class AppRoleCredentials:
    role: str
    role_id: str
    secret_id: str = field(repr=False)


def _rule(path: str, *capabilities: str) -> str:
    listed = ", ".join(f'"{c}"' for c in capabilities)
    return f'path "{path}" {{ capabilities = [{listed}] }}\n'


def api_policy(settings: VaultSettings) -> str:
    kv, prefix = settings.kv_mount, settings.path_prefix
    return (
        _rule(f"{kv}/data/{prefix}/*", "create", "read")
        + _rule(f"{kv}/metadata/{prefix}/*", "list", "delete")
        + _rule(f"{settings.transit_mount}/datakey/plaintext/{settings.transit_key}", "update")
    )


def executor_policy(settings: VaultSettings, owner: str) -> str:
    check_owner(owner)
    kv, prefix = settings.kv_mount, settings.path_prefix
    return (
        _rule(f"{kv}/data/{prefix}/{owner}/*", "read")
        + _rule(f"{kv}/metadata/{prefix}/{owner}/*", "list")
        + _rule(f"{settings.transit_mount}/decrypt/{settings.transit_key}", "update")
    )


def key_admin_policy(settings: VaultSettings) -> str:
    kv, prefix, transit = settings.kv_mount, settings.path_prefix, settings.transit_mount
    return (
        _rule(f"{kv}/data/{prefix}/*", "read", "update")
        + _rule(f"{kv}/metadata/{prefix}/*", "list")
        + _rule(f"{transit}/keys/{settings.transit_key}/rotate", "update")
        + _rule(f"{transit}/rewrap/{settings.transit_key}", "update")
    )


def executor_role(owner: str) -> str:
    """The executor's policy and AppRole name for one owner."""
    check_owner(owner)
    if _PLAIN_NAME.fullmatch(owner):
        return _EXECUTOR_ROLE + owner
    return _EXECUTOR_ROLE + hashlib.sha256(owner.encode()).hexdigest()[:24]


def prepare_backend(client: hvac.Client, settings: VaultSettings) -> None:
    """KV v2 and Transit mounted, the AppRole method enabled, the Transit key created."""
    with _vault_errors(settings.url, "mounting the secrets engines"):
        mounts = client.sys.list_mounted_secrets_engines()["data"]
        kv = mounts.get(f"{settings.kv_mount}/")
        if kv is None:
            client.sys.enable_secrets_engine("kv", path=settings.kv_mount, options={"version": "2"})
        elif kv["type"] != "kv" or (kv.get("options") or {}).get("version") != "2":
            raise SecretBackendError(f"Vault mount {settings.kv_mount}/ is not a KV v2 engine")
        if f"{settings.transit_mount}/" not in mounts:
            client.sys.enable_secrets_engine("transit", path=settings.transit_mount)
        if f"{settings.approle_mount}/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method("approle", path=settings.approle_mount)
    VaultSecretStore(
        client, kv_mount=settings.kv_mount, transit_mount=settings.transit_mount,
        transit_key=settings.transit_key, path_prefix=settings.path_prefix,
    ).ensure_transit_key()


def apply_role(client: hvac.Client, settings: VaultSettings, role: str, policy: str) -> None:
    """Write the policy and an AppRole of the same name holding only it (short-lived tokens)."""
    with _vault_errors(settings.url, f"writing policy and AppRole {role}"):
        client.sys.create_or_update_policy(name=role, policy=policy)
        client.auth.approle.create_or_update_approle(
            role, token_policies=[role], token_ttl="1h", token_max_ttl="4h",
            mount_point=settings.approle_mount,
        )


def approle_credentials(
    client: hvac.Client, settings: VaultSettings, role: str
) -> AppRoleCredentials:
    """The role's id and a new secret id (each call issues another; old ones stay valid)."""
    with _vault_errors(settings.url, f"issuing a secret id for {role}"):
        role_id = client.auth.approle.read_role_id(role, mount_point=settings.approle_mount)
        secret_id = client.auth.approle.generate_secret_id(role, mount_point=settings.approle_mount)
    return AppRoleCredentials(role, role_id["data"]["role_id"], secret_id["data"]["secret_id"])


def provision(
    client: hvac.Client, settings: VaultSettings, executor_owners: tuple[str, ...] = ()
) -> dict[str, AppRoleCredentials]:
    """Everything above, for the API, the key admin and one executor per owner."""
    prepare_backend(client, settings)
    policies = {API_ROLE: api_policy(settings), KEY_ADMIN_ROLE: key_admin_policy(settings)}
    for owner in executor_owners:
        policies[executor_role(owner)] = executor_policy(settings, owner)
    for role, policy in policies.items():
        apply_role(client, settings, role, policy)
    return {role: approle_credentials(client, settings, role) for role in policies}


def _write_env(directory: Path, settings: VaultSettings, credentials: AppRoleCredentials) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{credentials.role}.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(
            f"VAULT_ADDR={settings.url}\nVAULT_ROLE_ID={credentials.role_id}\n"
            f"VAULT_SECRET_ID={credentials.secret_id}\n"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.secrets.vault_setup",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-dir", required=True, type=Path,
                        help="where to write <role>.env with each AppRole's credentials")
    parser.add_argument("--executor-owner", action="append", default=[],
                        help="an owner whose keys an executor role may read (repeatable)")
    args = parser.parse_args(argv)
    try:
        settings = VaultSettings.from_env(os.environ)
        client = hvac.Client(url=settings.url, token=settings.token, timeout=settings.timeout)
        roles = provision(client, settings, tuple(args.executor_owner))
    except (SecretBackendError, ValueError) as error:
        print(f"vault_setup: {error}", file=sys.stderr)
        return 2
    for credentials in roles.values():
        _write_env(args.env_dir, settings, credentials)
    print(f"vault_setup: roles {', '.join(roles)} ready; credentials in {args.env_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
