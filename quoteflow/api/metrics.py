"""Prometheus metrics of the API, in a registry of its own per app.

Requests are labelled by route template (`/api/v1/keys/{exchange}/{key_id}`), never by the
raw path: paths carry ids, and a label per id would grow without bound. Requests no route
matched (404s, 413s refused before routing) share the label `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response

UNMATCHED = "unmatched"


class ApiMetrics:
    __slots__ = ("audit_publish_failures", "commands", "latency", "registry", "requests")

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "quoteflow_api_requests", "HTTP requests answered",
            ("method", "route", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "quoteflow_api_request_duration_seconds", "Time to answer a request",
            ("method", "route"), registry=self.registry,
        )
        self.commands = Counter(
            "quoteflow_api_commands_published", "Control commands delivered to Kafka",
            ("action",), registry=self.registry,
        )
        self.audit_publish_failures = Counter(
            "quoteflow_api_audit_publish_failures",
            "Audit records kept in the file but not delivered to the audit topic",
            registry=self.registry,
        )

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500  # unless a response comes back: an unhandled error is answered 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            label = _route_label(request)
            self.latency.labels(request.method, label).observe(time.perf_counter() - started)
            self.requests.labels(request.method, label, str(status)).inc()

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _route_label(request: Request) -> str:
    route = request.scope.get("route")
    if route is not None:
        return route.path
    # Routes FastAPI serves itself (OpenAPI, docs) match without a route object; their
    # paths are fixed, so the path is a bounded label.
    return request.url.path if "endpoint" in request.scope else UNMATCHED
