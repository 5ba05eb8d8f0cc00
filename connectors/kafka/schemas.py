"""JSON Schemas of every topic's messages, generated from `models.events`.

One file per topic in docs/schemas/ (`md.book.json`, ...), so consumers in other languages
can validate what quoteflow writes. The files are generated, never edited; a test fails
when they are stale.

    .venv/bin/python -m connectors.kafka.schemas [DIR]    # rewrite them (default docs/schemas)
"""

from __future__ import annotations

import json
import sys
from functools import reduce
from operator import or_
from pathlib import Path

import msgspec

from connectors.kafka.topics import TOPICS, TopicSpec

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def topic_schema(spec: TopicSpec) -> dict:
    schema = msgspec.json.schema(reduce(or_, spec.event_types))
    header = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": spec.name,
        "description": (
            f"{spec.purpose}. Messages are msgspec JSON with decimals as strings; `type` names "
            "the event and `v` its schema version."
        ),
        "x-kafka": {"topic": spec.name, "partitions": spec.partitions} | spec.configs(),
    }
    return header | schema


def render_schemas() -> dict[str, str]:
    """File name → file text, for every topic that has event types."""
    return {
        f"{spec.name}.json": json.dumps(topic_schema(spec), indent=2, ensure_ascii=False) + "\n"
        for spec in TOPICS
        if spec.event_types
    }


def write_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of schema files that are missing or differ from what the types generate."""
    return [
        name
        for name, text in render_schemas().items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        print(path)
