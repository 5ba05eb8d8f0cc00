"""Every request runs under a trace id (connectors/trace_context.py) and is logged once.

The trace id is the caller's W3C `traceparent` trace id when it sends a valid one, else a new
one; the request's own span id is the transaction id. The answer carries `traceparent` with
both, so a caller can find the API's, and the executor's, log lines for its request.
"""

from __future__ import annotations

import logging
import time

from connectors.trace_context import new_span_id, new_trace_id, trace_id_of, traced

log = logging.getLogger("quoteflow.api.requests")


class TraceMiddleware:
    """Pure ASGI (no task of its own): the route runs inside the trace's context."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"traceparent", b"")
        trace_id = trace_id_of(header.decode("latin-1")) or new_trace_id()
        span_id = new_span_id()
        status: list[int] = []

        async def send_traced(message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"traceparent", f"00-{trace_id}-{span_id}-01".encode()),
                ]
            await send(message)

        started = time.perf_counter_ns()
        with traced(trace_id, span_id):
            try:
                await self.app(scope, receive, send_traced)
            finally:
                code = status[0] if status else 500
                log.info("%s %s %d", scope["method"], scope["path"], code, extra={
                    "http.request.method": scope["method"], "url.path": scope["path"],
                    "http.response.status_code": code,
                    "event.duration": time.perf_counter_ns() - started,
                })
