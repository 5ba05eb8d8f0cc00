"""Trace and correlation ids for the logs of the API, the executor and the flows.

The control API gives every request a trace id (the caller's W3C `traceparent` trace id, or a
new one) and a transaction id of its own; a control command carries the trace id
(`ControlCommand.trace_id`), and whoever acts on the command logs under it (`traced`), so one
search for `trace.id` in Elasticsearch finds the request, the command and what the executor
did. `TraceFilter` puts the ids on every log record as the ECS fields `trace.id`,
`transaction.id` and `span.id` (docs/compliance.md).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_trace_id: ContextVar[str | None] = ContextVar("quoteflow_trace_id", default=None)
_transaction_id: ContextVar[str | None] = ContextVar("quoteflow_transaction_id", default=None)
# version "00", 32 hex trace id, 16 hex parent span id, 2 hex flags (W3C Trace Context)
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent` header (all-zero ids are invalid), else None."""
    match = _TRACEPARENT.match((traceparent or "").strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(1)


def valid_trace_id(value: str | None) -> str | None:
    """`value` when it is a W3C trace id (32 lowercase hex digits): a command's trace id
    comes from Kafka, so nothing else is put on log lines."""
    return value if value is not None and _TRACE_ID.match(value) else None


def current_trace_id() -> str | None:
    return _trace_id.get()


@contextmanager
def traced(trace_id: str | None, transaction_id: str | None = None) -> Iterator[str | None]:
    """Log under `trace_id` (and a new transaction id) inside the block; None: no trace."""
    trace_id = valid_trace_id(trace_id)
    trace_token = _trace_id.set(trace_id)
    transaction_token = _transaction_id.set(
        (transaction_id or new_span_id()) if trace_id else None
    )
    try:
        yield trace_id
    finally:
        _transaction_id.reset(transaction_token)
        _trace_id.reset(trace_token)


class TraceFilter(logging.Filter):
    """Adds `trace.id`, `transaction.id` and `span.id` to records logged inside `traced`."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id = _trace_id.get()
        if trace_id is not None and not hasattr(record, "trace.id"):
            transaction = _transaction_id.get()
            setattr(record, "trace.id", trace_id)
            setattr(record, "transaction.id", transaction)
            setattr(record, "span.id", transaction)
        return True
