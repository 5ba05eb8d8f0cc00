"""The local store's master key: 32 random bytes, from the environment or a 0600 file.

`QUOTEFLOW_MASTER_KEY` holds the key as base64; `QUOTEFLOW_MASTER_KEY_FILE` names a file
holding it (the form for Kubernetes secrets and systemd credentials). The file must be
readable by its owner only: a key anyone on the machine can read protects nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from connectors.secrets.errors import MasterKeyError

MASTER_KEY_ENV = "QUOTEFLOW_MASTER_KEY"
MASTER_KEY_FILE_ENV = "QUOTEFLOW_MASTER_KEY_FILE"
MASTER_KEY_BYTES = 32


class MasterKey:
    """32 key bytes that print as a fingerprint, never as themselves."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"a master key is exactly {MASTER_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(MASTER_KEY_BYTES))

    @classmethod
    def from_base64(cls, text: str, source: str) -> MasterKey:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError(f"{source} is not valid base64") from None
        if len(key) != MASTER_KEY_BYTES:
            raise MasterKeyError(
                f"{source} decodes to {len(key)} bytes; a master key is {MASTER_KEY_BYTES} "
                "random bytes in base64 (e.g. `openssl rand -base64 32`)"
            )
        return cls(key)

    @property
    def material(self) -> bytes:
        return self._key

    @property
    def fingerprint(self) -> str:
        """A short one-way id that tells keys apart in logs and errors."""
        return hashlib.sha256(b"quoteflow master key fingerprint\x00" + self._key).hexdigest()[:12]

    def to_base64(self) -> str:
        return base64.b64encode(self._key).decode()

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint})"

    def __reduce__(self) -> object:
        raise TypeError("MasterKey cannot be pickled")


def read_master_key_file(path: str | os.PathLike[str]) -> MasterKey:
    """The key in `path`, refusing a file that group or others can access."""
    path = Path(path)
    try:
        # Symlinks are followed (Kubernetes mounts secrets as links); the checks below fstat
        # the file actually opened, so the mode checked is the mode of what is read.
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise MasterKeyError(f"master key file {path} does not exist") from None
    except OSError as error:
        raise MasterKeyError(f"cannot open master key file {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MasterKeyError(f"master key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise MasterKeyError(
                f"master key file {path} has mode {mode:04o}; it must be readable by its owner "
                f"only: chmod 600 {path}"
            )
        content = os.read(fd, 1024)
    finally:
        os.close(fd)
    try:
        text = content.decode("ascii")
    except UnicodeDecodeError:
        raise MasterKeyError(f"master key file {path} is not base64 text") from None
    return MasterKey.from_base64(text, f"master key file {path}")


def load_master_key(environ: Mapping[str, str]) -> MasterKey:
    """The master key named by the environment (pass `os.environ`)."""
    inline = environ.get(MASTER_KEY_ENV)
    file = environ.get(MASTER_KEY_FILE_ENV)
    if inline and file:
        raise MasterKeyError(f"set {MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV}, not both")
    if inline:
        return MasterKey.from_base64(inline, MASTER_KEY_ENV)
    if file:
        return read_master_key_file(file)
    raise MasterKeyError(
        f"no master key: set {MASTER_KEY_ENV} to 32 random bytes in base64 "
        f"(`openssl rand -base64 32`) or {MASTER_KEY_FILE_ENV} to a file holding them (mode 0600)"
    )
