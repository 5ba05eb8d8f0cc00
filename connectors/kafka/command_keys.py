"""The keys that sign and verify operator commands (`models.command_signing`), from where
they live: the API's private key in a file readable by its owner only (PEM, PKCS#8) or in
`QUOTEFLOW_COMMANDS__SIGNING_KEY` (the base64 of the 32-byte seed; a secret store's agent
can provide either); the trusted public keys in the configuration, which is not secret.

    [commands]
    public_keys = ["<base64>"]        # every consumer that acts on commands (the executor)
    signing_key_file = "/path/key.pem"  # the API only
    max_age_s = 30.0                  # a command older than this is refused
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from models.command_signing import CommandVerifier, parse_public_key, public_key_text, sign
from models.events import ControlCommand

_NS_PER_S = 1_000_000_000


class CommandKeyError(ValueError):
    """A command key cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class CommandsConfig:
    public_keys: tuple[str, ...] = ()
    max_age_s: float = 30.0
    max_skew_s: float = 5.0  # how far ahead of our clock a signer's clock may be
    signing_key_file: str | None = None
    # Never from the configuration file (quoteflow.config refuses it there); never printed.
    signing_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.max_age_s <= 3600:
            raise CommandKeyError(f"commands.max_age_s must be in (0, 3600], not {self.max_age_s}")
        if not 0 <= self.max_skew_s <= 60:
            raise CommandKeyError(f"commands.max_skew_s must be in [0, 60], not {self.max_skew_s}")
        for text in self.public_keys:
            try:
                parse_public_key(text)
            except ValueError as error:
                raise CommandKeyError(f"commands.public_keys: {error}") from None


class CommandSigner:
    """Signs each command with a fresh 128-bit nonce."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @property
    def public_key(self) -> str:
        return public_key_text(self._key.public_key())

    def __call__(self, command: ControlCommand) -> ControlCommand:
        return sign(command, self._key, secrets.token_hex(16))


def load_signer(config: CommandsConfig) -> CommandSigner | None:
    """The API's signer, or None when no signing key is configured."""
    if config.signing_key is not None:
        try:
            seed = base64.b64decode(config.signing_key, validate=True)
            return CommandSigner(Ed25519PrivateKey.from_private_bytes(seed))
        except ValueError:
            raise CommandKeyError(
                "QUOTEFLOW_COMMANDS__SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed"
            ) from None
    if config.signing_key_file is None:
        return None
    path = Path(config.signing_key_file).expanduser()
    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as error:
        raise CommandKeyError(
            f"commands.signing_key_file {path}: {error.strerror}"
        ) from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise CommandKeyError(
            f"commands.signing_key_file {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
            "it must be readable by its owner only (chmod 600)"
        )
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CommandKeyError(
            f"commands.signing_key_file {path} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CommandKeyError(f"commands.signing_key_file {path} is not an Ed25519 key")
    return CommandSigner(key)


def load_verifier(config: CommandsConfig) -> CommandVerifier:
    return CommandVerifier(
        [parse_public_key(text) for text in config.public_keys],
        max_age_ns=int(config.max_age_s * _NS_PER_S),
        max_skew_ns=int(config.max_skew_s * _NS_PER_S),
    )


def new_signing_key_file(path: Path) -> str:
    """A new Ed25519 key in `path` (mode 0600, never overwritten); its public key text."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return public_key_text(key.public_key())
