"""The embedded default secret store: one AES-256-GCM encrypted JSON file.

Layout of the file (every binary field base64):

    {"format": "quoteflow-secrets", "version": 2, "generation": 3,
     "salt": ..., "key_check": ...,
     "records": [{"owner", "exchange", "key_id", "api_key_masked", "has_password",
                  "has_uid", "created_at", "nonce", "ciphertext"}, ...]}

Every record's ciphertext is bound to all the fields stored beside it (`sealing.record_aad`),
so an edited owner, masked key or creation time fails authentication. A version-1 file (which
bound owner, exchange and id only) is rewritten as version 2 when the store opens it.

The data key is HKDF-SHA256(master key, salt, "data key"), the key check
HKDF-SHA256(master key, salt, "key check"): comparing it tells a wrong master key apart from
a tampered record before anything is decrypted or written. Every write replaces the whole
file atomically under a lock (`atomic_file`), so readers in other processes (the executor
while the API adds a key) always see a complete store.

Master-key rotation builds the next generation (new salt, new key check, every record
re-encrypted with a fresh nonce) in memory and commits it with the same atomic rename: an
interruption anywhere before the rename leaves the old generation intact and readable with
the old key; after it, everything is readable with the new key. Nothing is ever half-rotated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.constant_time import bytes_eq
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connectors.atomic_file import exclusive_lock, remove_stale_temps, write_atomically
from connectors.secrets.credentials import ExchangeCredentials, KeyRecordInfo
from connectors.secrets.errors import (
    AmbiguousKeyError,
    CorruptStoreError,
    RecordNotFoundError,
    WrongMasterKeyError,
)
from connectors.secrets.master_key import MasterKey
from connectors.secrets.sealing import (
    DATA_KEY_BYTES,
    decode_field,
    encode_field,
    legacy_record_aad,
    record_aad,
    seal,
    unseal,
)
from connectors.secrets.store import RotationProgress, new_record_info
from connectors.secrets.validation import check_exchange, check_key_id, check_owner

FORMAT = "quoteflow-secrets"
FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1  # records bound to owner, exchange and id only
SALT_BYTES = 16


class _Keys:
    __slots__ = ("check", "data")

    def __init__(self, master: MasterKey, salt: bytes) -> None:
        self.data = _hkdf(master, salt, b"quoteflow/secrets/data-key/v1")
        self.check = _hkdf(master, salt, b"quoteflow/secrets/key-check/v1")


def _hkdf(master: MasterKey, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=DATA_KEY_BYTES, salt=salt, info=info).derive(
        master.material
    )


class LocalSecretStore:
    """`SecretStore` over one encrypted file; safe to share between processes."""

    def __init__(self, path: str | os.PathLike[str], master_key: MasterKey) -> None:
        self._path = Path(path)
        self._master = master_key
        self._keys_cache: tuple[bytes, _Keys] | None = None
        # Fail at start-up, not at the first trade, when the key does not fit the store.
        if self._path.exists():
            state = self._read()
            self._verified(state)
            if state["version"] == LEGACY_FORMAT_VERSION:
                with self._writing():
                    pass  # `_writing` upgrades what it reads

    def _upgrade(self, state: dict[str, Any]) -> None:
        """A version-1 state re-sealed in memory with every field bound (version 2)."""
        if state["version"] != LEGACY_FORMAT_VERSION:
            return
        keys = self._verified(state)
        upgraded = []
        for record in state["records"]:
            credentials = self._unseal(keys, record, LEGACY_FORMAT_VERSION)
            nonce, ciphertext = seal(keys.data, credentials, record_aad(_info(record)))
            upgraded.append(
                {**record, "nonce": encode_field(nonce), "ciphertext": encode_field(ciphertext)}
            )
        state.update(version=FORMAT_VERSION, records=upgraded)

    @property
    def path(self) -> Path:
        return self._path

    # -- the SecretStore interface ------------------------------------------------------

    def put(self, owner: str, exchange: str, credentials: ExchangeCredentials) -> KeyRecordInfo:
        info = new_record_info(owner, exchange, credentials)
        with self._writing() as state:
            keys = self._verified(state)
            nonce, ciphertext = seal(keys.data, credentials, record_aad(info))
            state["records"].append(_record(info, nonce, ciphertext))
        return info

    def get(self, owner: str, exchange: str, key_id: str | None = None) -> ExchangeCredentials:
        check_owner(owner)
        check_exchange(exchange)
        if key_id is not None:
            check_key_id(key_id)
        state = self._read()
        keys = self._verified(state)
        record = self._find(state, owner, exchange, key_id)
        return self._unseal(keys, record, state["version"])

    def list(self, owner: str) -> list[KeyRecordInfo]:
        check_owner(owner)
        state = self._read()
        keys = self._verified(state)
        mine = [record for record in state["records"] if record.get("owner") == owner]
        for record in mine:  # what is shown must be what was stored: authenticated first
            self._unseal(keys, record, state["version"])
        infos = [_info(record) for record in mine]
        return sorted(infos, key=lambda info: (info.exchange, info.created_at, info.key_id))

    def delete(self, owner: str, exchange: str, key_id: str) -> None:
        check_owner(owner)
        check_exchange(exchange)
        check_key_id(key_id)
        with self._writing() as state:
            self._verified(state)
            record = self._find(state, owner, exchange, key_id)
            state["records"].remove(record)

    # -- rotation -------------------------------------------------------------------------

    def rotate_master_key(
        self, new_key: MasterKey, progress: RotationProgress | None = None
    ) -> int:
        """Re-encrypt every record under `new_key`; returns how many.

        All or nothing: an exception (or a kill) before the final rename leaves the store
        as it was, readable with the old key. Afterwards this object uses `new_key`; point
        QUOTEFLOW_MASTER_KEY(_FILE) at it before the next start.
        """
        if not isinstance(new_key, MasterKey):
            raise TypeError(f"new_key must be a MasterKey, not {type(new_key).__name__}")
        with self._writing() as state:
            old_keys = self._verified(state)
            salt = os.urandom(SALT_BYTES)
            new_keys = _Keys(new_key, salt)
            records = state["records"]
            rotated = []
            for done, record in enumerate(records, start=1):
                credentials = self._unseal(old_keys, record, state["version"])
                nonce, ciphertext = seal(new_keys.data, credentials, record_aad(_info(record)))
                rotated.append(
                    {**record, "nonce": encode_field(nonce), "ciphertext": encode_field(ciphertext)}
                )
                if progress is not None:
                    progress(done, len(records))
            state.update(
                generation=state["generation"] + 1,
                salt=encode_field(salt),
                key_check=encode_field(new_keys.check),
                records=rotated,
            )
            # The file is renamed into place when the block exits; only then switch keys.
        self._master = new_key
        self._keys_cache = (salt, new_keys)
        return len(rotated)

    # -- file handling --------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return self._empty_state()
        return _parse(raw, self._path)

    def _empty_state(self) -> dict[str, Any]:
        salt = os.urandom(SALT_BYTES)
        keys = _Keys(self._master, salt)
        self._keys_cache = (salt, keys)
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "generation": 1,
            "salt": encode_field(salt),
            "key_check": encode_field(keys.check),
            "records": [],
        }

    @contextlib.contextmanager
    def _writing(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under the lock; the file is replaced only if the block succeeds."""
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with exclusive_lock(self._path):
            remove_stale_temps(self._path)
            state = self._read()
            self._upgrade(state)
            yield state
            write_atomically(self._path, json.dumps(state, separators=(",", ":")).encode())

    def _verified(self, state: dict[str, Any]) -> _Keys:
        salt = decode_field(state["salt"], f"{self._path}: salt", CorruptStoreError)
        if self._keys_cache is not None and self._keys_cache[0] == salt:
            keys = self._keys_cache[1]
        else:
            keys = _Keys(self._master, salt)
        key_check = decode_field(state["key_check"], f"{self._path}: key_check", CorruptStoreError)
        if not bytes_eq(keys.check, key_check):
            raise WrongMasterKeyError(
                f"master key {self._master.fingerprint} does not open {self._path} "
                f"(generation {state['generation']}); if a rotation just finished, use the new key"
            )
        self._keys_cache = (salt, keys)
        return keys

    def _find(
        self, state: dict[str, Any], owner: str, exchange: str, key_id: str | None
    ) -> dict[str, Any]:
        matches = [
            record
            for record in state["records"]
            if record.get("owner") == owner
            and record.get("exchange") == exchange
            and (key_id is None or record.get("key_id") == key_id)
        ]
        if not matches:
            which = f"key {key_id}" if key_id else "key"
            raise RecordNotFoundError(f"owner {owner} has no {exchange} {which}")
        if len(matches) > 1:
            ids = ", ".join(record["key_id"] for record in matches)
            raise AmbiguousKeyError(
                f"owner {owner} has several {exchange} keys ({ids}): pass key_id"
            )
        return matches[0]

    def _unseal(self, keys: _Keys, record: dict[str, Any], version: int) -> ExchangeCredentials:
        where = f"record {record.get('key_id')} in {self._path}"
        if version == LEGACY_FORMAT_VERSION:
            aad = legacy_record_aad(record["owner"], record["exchange"], record["key_id"])
        else:
            aad = record_aad(_info(record))
        return unseal(
            keys.data,
            decode_field(record.get("nonce"), f"{where}: nonce", CorruptStoreError),
            decode_field(record.get("ciphertext"), f"{where}: ciphertext", CorruptStoreError),
            aad,
            where,
        )


_INFO_FIELDS = tuple(field.name for field in dataclasses.fields(KeyRecordInfo))
_RECORD_FIELDS = frozenset((*_INFO_FIELDS, "nonce", "ciphertext"))
_FLAGS = frozenset(("has_password", "has_uid"))


def _record(info: KeyRecordInfo, nonce: bytes, ciphertext: bytes) -> dict[str, Any]:
    return {
        **dataclasses.asdict(info),
        "nonce": encode_field(nonce),
        "ciphertext": encode_field(ciphertext),
    }


def _info(record: dict[str, Any]) -> KeyRecordInfo:
    return KeyRecordInfo(**{name: record[name] for name in _INFO_FIELDS})


def _well_formed(record: object) -> bool:
    return (
        isinstance(record, dict)
        and set(record) == _RECORD_FIELDS
        and all(isinstance(record[name], bool if name in _FLAGS else str) for name in record)
    )


def _parse(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        state = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptStoreError(f"{path} is not valid JSON ({error.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CorruptStoreError(f"{path} is not a quoteflow secret store")
    if state.get("version") not in (FORMAT_VERSION, LEGACY_FORMAT_VERSION):
        raise CorruptStoreError(
            f"{path} has store format version {state.get('version')!r}; this code reads "
            f"versions {LEGACY_FORMAT_VERSION} and {FORMAT_VERSION}"
        )
    records = state.get("records")
    if not isinstance(state.get("generation"), int) or not isinstance(records, list):
        raise CorruptStoreError(f"{path} lacks a generation or a record list")
    if not isinstance(state.get("salt"), str) or not isinstance(state.get("key_check"), str):
        raise CorruptStoreError(f"{path} lacks its salt or key check")
    for index, record in enumerate(records):
        if not _well_formed(record):
            raise CorruptStoreError(f"{path}: record {index} does not have the record fields")
    return state
