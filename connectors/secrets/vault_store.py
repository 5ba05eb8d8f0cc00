"""The HashiCorp Vault backend: KV v2 holds the records, Transit wraps their data keys.

Envelope encryption: for each record we ask Transit for a fresh data key
(`POST transit/datakey/plaintext/<name>`), seal the credentials locally with AES-256-GCM
(`sealing`, the same associated data as the local store), and write only the Transit-wrapped
data key, the nonce and the ciphertext to KV v2 at `<prefix>/<owner>/<exchange>/<key_id>`.
Reading asks Transit to unwrap the data key (`POST transit/decrypt/<name>`). So:

- the credentials never travel to Vault, and KV never holds anything readable: reading a
  record needs both the KV read policy and the Transit decrypt policy;
- a record copied to another owner's path fails authentication locally;
- rotating the Transit key and rewrapping (`rotate_wrapping_key`) re-protects every record
  without any plaintext leaving this process, one record at a time: an interrupted rotation
  leaves each record wrapped by the old or the new key version, both of which decrypt.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import hvac
import hvac.exceptions
import requests

from connectors.secrets.credentials import ExchangeCredentials, KeyRecordInfo
from connectors.secrets.errors import (
    AmbiguousKeyError,
    RecordNotFoundError,
    SecretBackendError,
    TamperedRecordError,
)
from connectors.secrets.sealing import (
    DATA_KEY_BYTES,
    LEGACY_RECORD_SCHEMA,
    RECORD_SCHEMA,
    decode_field,
    encode_field,
    legacy_record_aad,
    record_aad,
    seal,
    unseal,
)
from connectors.secrets.store import RotationProgress, new_record_info
from connectors.secrets.validation import check_exchange, check_key_id, check_owner

_INFO_FIELDS = tuple(f.name for f in fields(KeyRecordInfo))
_RECORD_FIELDS = frozenset((*_INFO_FIELDS, "schema", "wrapped_key", "nonce", "ciphertext"))


@dataclass(frozen=True, slots=True)
class VaultSettings:
    """Where Vault is and how to log in: a token, or an AppRole's role id and secret id."""

    url: str
    token: str | None = field(default=None, repr=False)
    role_id: str | None = None
    secret_id: str | None = field(default=None, repr=False)
    approle_mount: str = "approle"
    namespace: str | None = None
    kv_mount: str = "secret"
    transit_mount: str = "transit"
    transit_key: str = "quoteflow-exchange-keys"
    path_prefix: str = "quoteflow"
    verify: bool | str = True  # False, True or a CA bundle path
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> VaultSettings:
        """Vault's own variables (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT)
        plus VAULT_ROLE_ID / VAULT_SECRET_ID for AppRole and QUOTEFLOW_VAULT_* for paths."""
        url = environ.get("VAULT_ADDR")
        if not url:
            raise SecretBackendError("VAULT_ADDR is not set")
        defaults = cls(url=url)
        return cls(
            url=url,
            token=environ.get("VAULT_TOKEN") or None,
            role_id=environ.get("VAULT_ROLE_ID") or None,
            secret_id=environ.get("VAULT_SECRET_ID") or None,
            approle_mount=environ.get("QUOTEFLOW_VAULT_APPROLE_MOUNT", defaults.approle_mount),
            namespace=environ.get("VAULT_NAMESPACE") or None,
            kv_mount=environ.get("QUOTEFLOW_VAULT_KV_MOUNT", defaults.kv_mount),
            transit_mount=environ.get("QUOTEFLOW_VAULT_TRANSIT_MOUNT", defaults.transit_mount),
            transit_key=environ.get("QUOTEFLOW_VAULT_TRANSIT_KEY", defaults.transit_key),
            path_prefix=environ.get("QUOTEFLOW_VAULT_PATH_PREFIX", defaults.path_prefix),
            verify=environ.get("VAULT_CACERT") or True,
        )


def connect_vault(settings: VaultSettings) -> hvac.Client:
    """An authenticated hvac client; fails here, at start-up, when Vault will not have us."""
    if not settings.token and not settings.role_id:
        raise SecretBackendError(
            "no Vault credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID"
        )
    client = hvac.Client(
        url=settings.url,
        token=settings.token,
        namespace=settings.namespace,
        verify=settings.verify,
        timeout=settings.timeout,
    )
    with _vault_errors(settings.url, "login"):
        if settings.role_id:
            client.auth.approle.login(
                role_id=settings.role_id,
                secret_id=settings.secret_id,
                mount_point=settings.approle_mount,
            )
        client.auth.token.lookup_self()
    return client


@contextlib.contextmanager
def _vault_errors(
    url: str,
    action: str,
    *,
    on_missing: Exception | None = None,
    on_rejected: Exception | None = None,
) -> Iterator[None]:
    """hvac and requests failures as the store's errors, saying what to check.

    `on_missing` replaces a 404, `on_rejected` a 400 (Transit refusing a ciphertext). Vault's
    error strings name paths and reasons, never request bodies, so they are safe to carry;
    the hvac exception is not chained, to keep tracebacks short.
    """
    try:
        yield
    except hvac.exceptions.InvalidPath:
        if on_missing is None:
            raise SecretBackendError(f"Vault at {url}: nothing found for {action}") from None
        raise on_missing from None
    except hvac.exceptions.InvalidRequest as error:
        if on_rejected is None:
            raise SecretBackendError(
                f"Vault at {url} rejected {action}: {_reason(error)}"
            ) from None
        raise on_rejected from None
    except (hvac.exceptions.Unauthorized, hvac.exceptions.Forbidden) as error:
        raise SecretBackendError(
            f"Vault at {url} refused {action} ({_reason(error)}): check the token or AppRole "
            "and its policy (docs/secrets.md)"
        ) from None
    except requests.exceptions.RequestException as error:
        raise SecretBackendError(
            f"Vault at {url} is unreachable during {action}: {type(error).__name__}"
        ) from None
    except hvac.exceptions.VaultError as error:
        raise SecretBackendError(f"Vault at {url} failed {action}: {_reason(error)}") from None


def _reason(error: hvac.exceptions.VaultError) -> str:
    """Vault's error strings on one line: a 403 on a path comes wrapped as
    "1 error occurred:\n\t* permission denied\n\n", which is unwrapped here."""
    reasons = [
        line.strip().removeprefix("* ")
        for text in map(str, error.errors or [])
        for line in text.splitlines()
        if line.strip() and not _WRAPPER.fullmatch(line.strip())
    ]
    return "; ".join(reasons) or type(error).__name__


_WRAPPER = re.compile(r"\d+ errors? occurred:")


class VaultSecretStore:
    """`SecretStore` over Vault KV v2 + Transit (see the module docstring)."""

    def __init__(
        self,
        client: hvac.Client,
        *,
        kv_mount: str = "secret",
        transit_mount: str = "transit",
        transit_key: str = "quoteflow-exchange-keys",
        path_prefix: str = "quoteflow",
    ) -> None:
        self._client = client
        self._kv = client.secrets.kv.v2
        self._transit = client.secrets.transit
        self._kv_mount = kv_mount
        self._transit_mount = transit_mount
        self._transit_key = transit_key
        self._prefix = path_prefix.strip("/")

    @classmethod
    def from_settings(cls, settings: VaultSettings) -> VaultSecretStore:
        return cls(
            connect_vault(settings),
            kv_mount=settings.kv_mount,
            transit_mount=settings.transit_mount,
            transit_key=settings.transit_key,
            path_prefix=settings.path_prefix,
        )

    def ensure_transit_key(self) -> None:
        """Create the Transit key (aes256-gcm96) if missing; a set-up step, not per request."""
        with self._errors("creating the Transit key"):
            self._transit.create_key(
                name=self._transit_key, key_type="aes256-gcm96", mount_point=self._transit_mount
            )

    # -- the SecretStore interface ------------------------------------------------------

    def put(self, owner: str, exchange: str, credentials: ExchangeCredentials) -> KeyRecordInfo:
        info = new_record_info(owner, exchange, credentials)
        key_id = info.key_id
        with self._errors("generating a data key"):
            data_key = self._transit.generate_data_key(
                name=self._transit_key,
                key_type="plaintext",
                bits=DATA_KEY_BYTES * 8,
                mount_point=self._transit_mount,
            )["data"]
        nonce, ciphertext = seal(
            decode_field(data_key["plaintext"], "Transit data key", TamperedRecordError),
            credentials,
            record_aad(info),
        )
        record = {
            **asdict(info),
            "schema": RECORD_SCHEMA,
            "wrapped_key": data_key["ciphertext"],
            "nonce": encode_field(nonce),
            "ciphertext": encode_field(ciphertext),
        }
        with self._errors("writing the record"):
            # cas=0: create only, so a record is never overwritten.
            self._kv.create_or_update_secret(
                path=self._path(owner, exchange, key_id),
                secret=record,
                cas=0,
                mount_point=self._kv_mount,
            )
        return info

    def get(self, owner: str, exchange: str, key_id: str | None = None) -> ExchangeCredentials:
        check_owner(owner)
        check_exchange(exchange)
        if key_id is None:
            key_id = self._only_key_id(owner, exchange)
        check_key_id(key_id)
        record, _ = self._read(owner, exchange, key_id)
        return self._unseal(record, owner, exchange, key_id)

    def _unseal(
        self, record: dict[str, Any], owner: str, exchange: str, key_id: str
    ) -> ExchangeCredentials:
        where = f"Vault record {self._path(owner, exchange, key_id)}"
        refused = TamperedRecordError(f"{where}: Transit refused to unwrap its data key")
        with self._errors("unwrapping the data key", on_rejected=refused):
            plaintext_key = self._transit.decrypt_data(
                name=self._transit_key,
                ciphertext=record["wrapped_key"],
                mount_point=self._transit_mount,
            )["data"]["plaintext"]
        if record["schema"] == LEGACY_RECORD_SCHEMA:  # written before every field was bound
            aad = legacy_record_aad(owner, exchange, key_id)
        else:
            aad = record_aad(KeyRecordInfo(**{name: record[name] for name in _INFO_FIELDS}))
        return unseal(
            decode_field(plaintext_key, "Transit data key", TamperedRecordError),
            decode_field(record["nonce"], f"{where}: nonce", TamperedRecordError),
            decode_field(record["ciphertext"], f"{where}: ciphertext", TamperedRecordError),
            aad,
            where,
        )

    def list(self, owner: str) -> list[KeyRecordInfo]:
        check_owner(owner)
        infos = []
        for exchange in self._children(owner):
            for key_id in self._children(owner, exchange):
                record, _ = self._read(owner, exchange, key_id)
                # What is shown must be what was stored: authenticated before it is listed,
                # by whoever may unwrap data keys. The API's policy may not (it must never
                # decrypt): it lists what is stored, and the executor's read of the key
                # detects any edit (the fields are the AEAD's associated data).
                try:
                    self._unseal(record, owner, exchange, key_id)
                except SecretBackendError as error:
                    if "permission denied" not in str(error):
                        raise
                infos.append(KeyRecordInfo(**{name: record[name] for name in _INFO_FIELDS}))
        return sorted(infos, key=lambda info: (info.exchange, info.created_at, info.key_id))

    def delete(self, owner: str, exchange: str, key_id: str) -> None:
        check_owner(owner)
        check_exchange(exchange)
        check_key_id(key_id)
        self._read(owner, exchange, key_id)  # Vault deletes missing paths silently; we do not
        with self._errors("deleting the record"):
            self._kv.delete_metadata_and_all_versions(
                path=self._path(owner, exchange, key_id), mount_point=self._kv_mount
            )

    # -- rotation -------------------------------------------------------------------------

    def rotate_wrapping_key(self, progress: RotationProgress | None = None) -> int:
        """Rotate the Transit key, then rewrap every record's data key under the new version.

        Each record is rewritten on its own with check-and-set, so a crash leaves a mix of
        old- and new-version wrappings that all still decrypt; run it again to finish. Only
        after a complete run may an operator raise the key's `min_decryption_version`.
        """
        with self._errors("rotating the Transit key"):
            self._transit.rotate_key(name=self._transit_key, mount_point=self._transit_mount)
        paths = [
            (owner, exchange, key_id)
            for owner in self._children()
            for exchange in self._children(owner)
            for key_id in self._children(owner, exchange)
        ]
        for done, (owner, exchange, key_id) in enumerate(paths, start=1):
            record, version = self._read(owner, exchange, key_id)
            with self._errors("rewrapping a data key"):
                rewrapped = self._transit.rewrap_data(
                    name=self._transit_key,
                    ciphertext=record["wrapped_key"],
                    mount_point=self._transit_mount,
                )["data"]["ciphertext"]
                self._kv.create_or_update_secret(
                    path=self._path(owner, exchange, key_id),
                    secret={**record, "wrapped_key": rewrapped},
                    cas=version,
                    mount_point=self._kv_mount,
                )
            if progress is not None:
                progress(done, len(paths))
        return len(paths)

    # -- Vault calls --------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self._prefix, *parts))

    def _errors(
        self,
        action: str,
        *,
        on_missing: Exception | None = None,
        on_rejected: Exception | None = None,
    ) -> contextlib.AbstractContextManager[None]:
        return _vault_errors(
            self._client.url, action, on_missing=on_missing, on_rejected=on_rejected
        )

    def _read(self, owner: str, exchange: str, key_id: str) -> tuple[dict[str, Any], int]:
        """The record's data and KV version; RecordNotFoundError if there is none."""
        path = self._path(owner, exchange, key_id)
        missing = RecordNotFoundError(f"owner {owner} has no {exchange} key {key_id}")
        with self._errors("reading the record", on_missing=missing):
            response = self._kv.read_secret_version(
                path=path, mount_point=self._kv_mount, raise_on_deleted_version=True
            )
        record = response["data"]["data"]
        if (
            not isinstance(record, dict)
            or record.get("schema") not in (RECORD_SCHEMA, LEGACY_RECORD_SCHEMA)
            or not record.keys() >= _RECORD_FIELDS
        ):
            raise TamperedRecordError(f"Vault record {path} is not a quoteflow record")
        return record, response["data"]["metadata"]["version"]

    def _children(self, *parts: str) -> list[str]:
        """Names directly under `<prefix>/<parts...>/` (KV v2 LIST on metadata)."""
        try:
            with self._errors("listing records", on_missing=_NoChildren()):
                response = self._kv.list_secrets(
                    path=self._path(*parts) + "/", mount_point=self._kv_mount
                )
        except _NoChildren:
            return []
        return [name.rstrip("/") for name in response["data"]["keys"]]

    def _only_key_id(self, owner: str, exchange: str) -> str:
        key_ids = self._children(owner, exchange)
        if not key_ids:
            raise RecordNotFoundError(f"owner {owner} has no {exchange} key")
        if len(key_ids) > 1:
            raise AmbiguousKeyError(
                f"owner {owner} has several {exchange} keys ({', '.join(key_ids)}): pass key_id"
            )
        return key_ids[0]


class _NoChildren(Exception):
    """KV LIST answered 404: the folder is empty."""


