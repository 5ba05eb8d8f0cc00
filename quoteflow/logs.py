"""How a quoteflow process logs: `--log-format ecs|text` or the config's `[logging]` section.

`ecs` writes one Elastic Common Schema JSON document per line to stderr through Elastic's
`ecs-logging` formatter (`@timestamp`, `log.level`, `message`, `log.logger`, `process.pid`,
`error.*` for exceptions), with `service.name` = quoteflow, `event.dataset` =
quoteflow.<command> and the trace ids of `connectors.trace_context` (`trace.id`,
`transaction.id`, `span.id`): ready for Filebeat or Elastic Agent into Elasticsearch.
`text` is a plain line per record. Without either, logging is left as Python sets it up.
The command line wins over the configuration.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import ecs_logging

from connectors.trace_context import TraceFilter

FORMATS = ("text", "ecs")
SERVICE = "quoteflow"

_state: dict = {"handler": None, "format": None, "from_cli": False, "dataset": "quoteflow",
                "level_before": logging.WARNING}


def configure(
    log_format: str, *, dataset: str | None = None, level: str = "INFO",
    stream: TextIO | None = None, from_cli: bool = False,
) -> logging.Handler:
    """Install the root handler (replacing the one installed before); ValueError on an
    unknown format or level."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
    dataset = dataset or _state["dataset"]
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "ecs":
        handler.setFormatter(ecs_logging.StdlibFormatter(
            extra={"service.name": SERVICE, "event.dataset": dataset},
            # log.original repeats message, process.thread.* says nothing across processes,
            # uvicorn's color_message is message with terminal colours
            exclude_fields=["log.original", "process.thread", "color_message"],
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TraceFilter())
    root = logging.getLogger()
    if _state["handler"] is not None:
        root.removeHandler(_state["handler"])
    else:
        _state["level_before"] = root.level
    root.addHandler(handler)
    root.setLevel(numeric)
    _state.update(handler=handler, format=log_format, dataset=dataset,
                  from_cli=from_cli or _state["from_cli"])
    return handler


def from_config(section, dataset: str | None = None) -> None:
    """Apply a config's `[logging]` section unless `--log-format` chose already."""
    if section is not None and section.format is not None and not _state["from_cli"]:
        configure(section.format, dataset=dataset, level=section.level)


def active_format() -> str | None:
    return _state["format"]


def start(command: str | None, log_format: str | None) -> None:
    """At the start of a command: it names the dataset (`quoteflow.api`, ...); a format
    given on the command line is installed now and the configuration's is then ignored."""
    _state.update(dataset=f"{SERVICE}.{command or 'cli'}", from_cli=False)
    if log_format is not None:
        configure(log_format, from_cli=True)


def stop() -> None:
    """Remove the handler `configure` installed (tests; a process keeps it to its end)."""
    if _state["handler"] is not None:
        logging.getLogger().removeHandler(_state["handler"])
        logging.getLogger().setLevel(_state["level_before"])
    _state.update(handler=None, format=None, from_cli=False, dataset=SERVICE)
