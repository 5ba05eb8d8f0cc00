"""AES-256-GCM sealing of one credentials record, shared by both backends.

Each record gets a fresh random 96-bit nonce. The associated data binds the ciphertext to
where it belongs (schema version, owner, exchange, key id), so a record copied to another
owner, exchange or id fails authentication instead of decrypting under the wrong name.
"""

from __future__ import annotations

import os

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.secrets.credentials import ExchangeCredentials
from connectors.secrets.errors import TamperedRecordError

RECORD_SCHEMA = 1
NONCE_BYTES = 12
DATA_KEY_BYTES = 32

_AAD_PREFIX = b"quoteflow/exchange-key"


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str
    secret: str
    password: str | None = None
    uid: str | None = None


_decode_payload = msgspec.json.Decoder(_Payload).decode


def record_aad(owner: str, exchange: str, key_id: str) -> bytes:
    # Validated identifiers never contain NUL, so the joined form is unambiguous.
    return b"\x00".join(
        (
            _AAD_PREFIX,
            str(RECORD_SCHEMA).encode(),
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
            f"{where} failed authentication: its ciphertext, owner, exchange or id was altered"
        ) from None
    payload = _decode_payload(plaintext)
    return ExchangeCredentials(payload.api_key, payload.secret, payload.password, payload.uid)
