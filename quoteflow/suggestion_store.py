"""Where `quoteflow suggest` publishes its latest suggestion and the API reads it.

One JSON file, replaced atomically (written beside, then renamed), so a reader never sees
half of one: $QUOTEFLOW_SUGGESTION_PATH, by default beside the API's other state files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PATH_ENV = "QUOTEFLOW_SUGGESTION_PATH"
DEFAULT_PATH = "~/.local/share/quoteflow/suggestion.json"


class NoSuggestion(LookupError):
    """Nothing published yet, or what is there cannot be read as a suggestion."""


def latest_path() -> Path:
    return Path(os.environ.get(PATH_ENV) or DEFAULT_PATH).expanduser()


def publish(suggestion: dict, path: Path | None = None) -> Path:
    path = path or latest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(suggestion, indent=2))
    temporary.replace(path)
    return path


def read_latest(path: Path | None = None) -> dict:
    path = path or latest_path()
    try:
        suggestion = json.loads(path.read_text())
    except FileNotFoundError:
        raise NoSuggestion("no suggestion published yet: run 'quoteflow suggest'") from None
    except (OSError, ValueError) as error:
        raise NoSuggestion(f"the latest suggestion is unreadable: {error}") from None
    if not isinstance(suggestion, dict) or "strategy" not in suggestion:
        raise NoSuggestion("the latest suggestion is unreadable: no strategy in it")
    return suggestion
