"""Liveness, readiness and Prometheus metrics of a long-running process, over HTTP.

The flows and the executor block in Bytewax's or their own loop, so the endpoint runs on a
daemon thread of its own (the standard library's threaded HTTP server):

- `GET /healthz`: 200 while the process runs (the thread answers only if the interpreter
  still schedules Python threads, which is what a liveness probe should test);
- `GET /readyz`: 200 once the caller marked the process ready (configuration checked,
  work started), 503 before and after `ready(False)`;
- `GET /metrics`: the Prometheus text format of the default registry (process and Python
  metrics, and any metric the process registers there) plus `quoteflow_up{process}` and
  `quoteflow_ready{process}`.

Kubernetes probes and a ServiceMonitor/PodMonitor read these (k8s/, docs/kubernetes.md).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest

_GAUGES: dict[int, tuple[Gauge, Gauge]] = {}  # per registry: a metric is registered once


def _gauges(registry: CollectorRegistry) -> tuple[Gauge, Gauge]:
    key = id(registry)
    if key not in _GAUGES:
        _GAUGES[key] = (
            Gauge("quoteflow_up", "1 while the process runs", ("process",), registry=registry),
            Gauge("quoteflow_ready", "1 while the process is ready", ("process",),
                  registry=registry),
        )
    return _GAUGES[key]


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on `host:port` (port 0 picks a free one)."""

    def __init__(
        self,
        process: str,
        port: int,
        host: str = "0.0.0.0",  # the kubelet and Prometheus probe the pod IP, not loopback
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.process = process
        self._ready = threading.Event()
        self._registry = registry
        self._up, self._ready_gauge = _gauges(registry)
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"health-{process}", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
        self._up.labels(self.process).set(1)
        self._ready_gauge.labels(self.process).set(0)
        self._thread.start()
        return self

    def ready(self, value: bool = True) -> None:
        (self._ready.set if value else self._ready.clear)()
        self._ready_gauge.labels(self.process).set(1 if value else 0)

    def stop(self) -> None:
        self._up.labels(self.process).set(0)
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ready = owner._ready.is_set()
                    self._send(200 if ready else 503, b"ready\n" if ready else b"not ready\n")
                elif path == "/metrics":
                    self._send(200, generate_latest(owner._registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found\n")

            def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # probes every few seconds: no access log
                pass

        return Handler
