"""Whole-file replacement that is never seen half-written, under an exclusive lock.

A new version goes to a temporary file in the same directory, is fsynced, and is renamed
over the old one; the directory is fsynced so the rename survives a power cut. A crash at
any point leaves either the old file or the new one, plus at worst a stray temporary file,
which the next writer removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (mode 0600): all of it or, after a crash, none of it."""
    fd, temp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_directory(path.parent)


def _create_temp(path: Path) -> tuple[int, str]:
    for attempt in range(100):
        temp = path.parent / f"{_temp_prefix(path)}{os.getpid()}.{attempt}{_TEMP_SUFFIX}"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(temp)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def fsync_directory(directory: Path) -> None:
    """Make a new or renamed file's directory entry durable too, not only its contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temporary files a crashed writer left beside `path`; call holding the lock."""
    stale = [
        candidate
        for candidate in path.parent.glob(f"{_temp_prefix(path)}*{_TEMP_SUFFIX}")
        if candidate.is_file()
    ]
    for candidate in stale:
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
    return stale


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `<path>.lock` (one writer across processes)."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
