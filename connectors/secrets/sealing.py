"""AES-256-GCM sealing of one credentials record, shared by both backends.

Each record gets a fresh random 96-bit nonce. The associated data binds the ciphertext to
every field stored beside it (schema 2: owner, exchange, key id, masked api key, the
password and uid flags, creation time), so a record copied to another owner, exchange or
id, or any of those fields edited in place, fails authentication instead of decrypting
under a false description. Schema 1 (written before) bound owner, exchange and id only;
it is still read, and the local store rewrites it as schema 2 on open.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.secrets.credentials import ExchangeCredentials, KeyRecordInfo
from connectors.secrets.errors import SecretStoreError, TamperedRecordError

RECORD_SCHEMA = 2
LEGACY_RECORD_SCHEMA = 1  # owner, exchange and key id bound; the other fields were not
NONCE_BYTES = 12
DATA_KEY_BYTES = 32

_AAD_PREFIX = b"quoteflow/exchange-key"


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str
    secret: str
    password: str | None = None
    uid: str | None = None


_decode_payload = msgspec.json.Decoder(_Payload).decode


_canonical = msgspec.json.Encoder(order="sorted")


def encode_field(data: bytes) -> str:
    """A stored binary field (nonce, ciphertext, salt, data key) as base64 text."""
    return base64.b64encode(data).decode()


def decode_field(text: object, where: str, error: type[SecretStoreError]) -> bytes:
    """`encode_field` undone; `error` is what bad text means to the backend reading it
    (a corrupt local file, a tampered Vault record)."""
    if not isinstance(text, str):
        raise error(f"{where} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{where} is not valid base64") from None


def record_aad(info: KeyRecordInfo) -> bytes:
    """Schema 2: every stored field, as canonical JSON (sorted keys), after the prefix."""
    return b"\x00".join(
        (_AAD_PREFIX, str(RECORD_SCHEMA).encode(), _canonical.encode(dataclasses.asdict(info)))
    )


def legacy_record_aad(owner: str, exchange: str, key_id: str) -> bytes:
    """Schema 1, for reading records written before every field was bound."""
    # Validated identifiers never contain NUL, so the joined form is unambiguous.
    return b"\x00".join(
        (
            _AAD_PREFIX,
            str(LEGACY_RECORD_SCHEMA).encode(),
            owner.encode(),
            exchange.encode(),
            key_id.encode(),
        )
    )


def seal(data_key: bytes, credentials: ExchangeCredentials, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext with tag) of the credentials under `data_key`."""
    plaintext = msgspec.json.encode(_Payload(*credentials.as_tuple()))
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(data_key).encrypt(nonce, plaintext, aad)


def unseal(
    data_key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, where: str
) -> ExchangeCredentials:
    """The credentials, or TamperedRecordError naming `where` when authentication fails."""
    if len(nonce) != NONCE_BYTES:
        raise TamperedRecordError(f"{where}: nonce is {len(nonce)} bytes, expected {NONCE_BYTES}")
    try:
        plaintext = AESGCM(data_key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise TamperedRecordError(
            f"{where} failed authentication: its ciphertext or a field stored beside it "
            "(owner, exchange, id, masked key, flags, creation time) was altered"
        ) from None
    payload = _decode_payload(plaintext)
    return ExchangeCredentials(payload.api_key, payload.secret, payload.password, payload.uid)
