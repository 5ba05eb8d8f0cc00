"""Output options checked before a command does any work: a result that cannot be written is a
usage error (exit 2, one line naming the path), found before a long run rather than as a
traceback after it, and no partial output is left behind.

`output_file` and `output_dir` are Typer option callbacks; their `BadParameter` is rendered
like every other bad option (`Invalid value for '--json': ...`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def unwritable(path: Path, *, directory: bool) -> str | None:
    """Why `path` cannot be written as a file (or made a directory), or None. Missing parent
    directories are fine: the commands create them."""
    if path.is_dir() and not directory:
        return f"{path} is a directory, not a file"
    if path.exists():
        if directory and not path.is_dir():
            return f"{path} is a file, not a directory"
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is a file, not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable"
    return None


def output_file(value: Path | None) -> Path | None:
    if value is not None and (reason := unwritable(value, directory=False)):
        raise typer.BadParameter(reason)
    return value


def output_dir(value: Path | None) -> Path | None:
    if value is not None and (reason := unwritable(value, directory=True)):
        raise typer.BadParameter(reason)
    return value
