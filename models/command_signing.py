"""Signed operator commands: who issued a `ControlCommand`, when, and that it is used once.

Defense in depth behind the broker's ACLs (docs/security.md): the control API signs each
command with its Ed25519 key over every field but the signature (the user's identity,
the time, a random nonce, the action and its parameters); the executor acts only on a
command whose signature verifies with a key it was configured to trust, that is fresh
(`max_age_ns` old at most, not from the future beyond `max_skew_ns`) and whose nonce it
has not seen within the freshness window. A stolen Kafka credential therefore cannot
forge, alter, delay or replay an operator's command.

Pure: keys come in as `cryptography` objects, the clock as an argument.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from models.events import CONTROL_SCHEMA_VERSION, ControlCommand

# Signatures over commands are never valid for anything else signed with the same key.
_DOMAIN = b"quoteflow.control-command.v2\n"
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_MAX_NONCE_LENGTH = 64

# Why a command is refused; the executor audits them.
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
STALE = "stale"
FROM_THE_FUTURE = "from_the_future"
REPLAYED = "replayed"
REASONS = (UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, STALE, FROM_THE_FUTURE, REPLAYED)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in standard base64: how configurations list trusted keys."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError(
            "a command public key is the base64 of 32 raw Ed25519 bytes "
            f"(got {len(text)} characters that are not)"
        ) from None


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key (the first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def signing_payload(command: ControlCommand) -> bytes:
    """The bytes signed: every field but `signature`, as JSON with sorted keys."""
    fields = msgspec.to_builtins(command)
    fields.pop("signature", None)
    if fields.get("trace_id") is None:  # signed as before the field existed
        fields.pop("trace_id", None)
    return _DOMAIN + _encode_sorted(fields)


def sign(command: ControlCommand, key: Ed25519PrivateKey, nonce: str) -> ControlCommand:
    """`command` as v2 with `nonce`, the key's id and the signature."""
    unsigned = msgspec.structs.replace(
        command, v=CONTROL_SCHEMA_VERSION, nonce=nonce, key_id=key_id(key.public_key()),
        signature=None,
    )
    signature = key.sign(signing_payload(unsigned))
    return msgspec.structs.replace(
        unsigned, signature=base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    )


class CommandVerifier:
    """Decides whether a command may be acted on; remembers nonces while they are fresh.

    Memory is bounded by the commands signed within `max_age_ns` (+ `max_skew_ns`): a nonce
    older than that is forgotten, since its command would now be refused as stale.
    """

    __slots__ = ("_keys", "_max_age_ns", "_max_skew_ns", "_seen")

    def __init__(self, keys: Iterable[Ed25519PublicKey], max_age_ns: int, max_skew_ns: int):
        if max_age_ns <= 0 or max_skew_ns < 0:
            raise ValueError("command max age must be > 0 and max skew >= 0")
        self._keys = {key_id(key): key for key in keys}
        self._max_age_ns = max_age_ns
        self._max_skew_ns = max_skew_ns
        self._seen: dict[str, int] = {}  # nonce → the command's ts

    @property
    def trusted(self) -> frozenset[str]:
        return frozenset(self._keys)

    # Keys are `cryptography` objects, which do not pickle: a process that snapshots its
    # verifier (the quote flow's command gate) keeps their raw bytes and the nonces seen.
    def __getstate__(self) -> tuple:
        raw = [key.public_bytes(Encoding.Raw, PublicFormat.Raw) for key in self._keys.values()]
        return raw, self._max_age_ns, self._max_skew_ns, dict(self._seen)

    def __setstate__(self, state: tuple) -> None:
        raw, self._max_age_ns, self._max_skew_ns, self._seen = state
        keys = [Ed25519PublicKey.from_public_bytes(key) for key in raw]
        self._keys = {key_id(key): key for key in keys}

    def refusal(self, command: ControlCommand, now_ns: int) -> str | None:
        """None when `command` may be acted on (its nonce is then spent), else the reason."""
        if command.signature is None or command.nonce is None or command.key_id is None:
            return UNSIGNED
        key = self._keys.get(command.key_id)
        if key is None:
            return UNKNOWN_KEY
        if not _verifies(key, command):
            return BAD_SIGNATURE
        age = now_ns - command.ts
        if age > self._max_age_ns:
            return STALE
        if age < -self._max_skew_ns:
            return FROM_THE_FUTURE
        self._forget(now_ns)
        if command.nonce in self._seen:
            return REPLAYED
        self._seen[command.nonce] = command.ts
        return None

    def spend(self, nonces: Iterable[tuple[str, int]], now_ns: int) -> None:
        """Remember the nonces (with their commands' ts) that an earlier run acted on, as
        read back from its audit trail; those already too old to pass are not kept."""
        oldest = now_ns - self._max_age_ns
        self._seen.update((nonce, ts) for nonce, ts in nonces if ts >= oldest)

    def _forget(self, now_ns: int) -> None:
        oldest = now_ns - self._max_age_ns
        if self._seen and min(self._seen.values()) < oldest:
            self._seen = {n: ts for n, ts in self._seen.items() if ts >= oldest}


def verifies(key: Ed25519PublicKey, command: ControlCommand) -> bool:
    """Whether `key` signed `command` exactly as it is (an auditor's check of a stored
    command: no freshness, no nonce)."""
    return _verifies(key, command)


def _verifies(key: Ed25519PublicKey, command: ControlCommand) -> bool:
    text = command.signature or ""
    if len(command.nonce or "") > _MAX_NONCE_LENGTH or len(text) > 100:
        return False
    try:
        signature = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key.verify(signature, signing_payload(command))
    except (InvalidSignature, ValueError):
        return False
    return True
