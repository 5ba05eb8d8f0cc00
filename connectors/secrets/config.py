"""The `[secrets]` configuration section and the secret store it opens (docs/secrets.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import msgspec

from connectors.secrets.local_store import LocalSecretStore
from connectors.secrets.master_key import load_master_key
from connectors.secrets.store import SecretStore
from connectors.secrets.vault_store import VaultSecretStore, VaultSettings


class SecretsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    backend: str = "local"
    path: str = "~/.local/share/quoteflow/keys.json"
    vault_addr: str | None = None
    vault_mount: str = "secret"
    vault_transit_key: str = "quoteflow"


def open_secret_store(config: SecretsConfig, environ: Mapping[str, str]) -> SecretStore:
    if config.backend == "local":
        return LocalSecretStore(Path(config.path).expanduser(), load_master_key(environ))
    if config.backend == "vault":
        if config.vault_addr:
            environ = {**environ, "VAULT_ADDR": config.vault_addr}
        settings = dataclasses.replace(
            VaultSettings.from_env(environ),
            kv_mount=config.vault_mount,
            transit_key=config.vault_transit_key,
        )
        return VaultSecretStore.from_settings(settings)
    raise ValueError(f"secrets.backend must be 'local' or 'vault', not {config.backend!r}")
