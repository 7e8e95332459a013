"""/metrics on a port of its own (`LAMBDA_TRIGGER_API_METRICS_PORT`, issue 19).

The api port is reachable by every DataHub user through nginx / the ingress; a metrics port
that only the cluster (Prometheus) can reach keeps request counts and timings away from them.
prometheus_client's own WSGI server serves it (any path answers the exposition, as
prometheus_client does), from a daemon thread started with the app and stopped with it.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class MetricsServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server, self._thread = start_http_server(
            self.port, addr=self.host, registry=self._registry
        )
        log.info("metrics on %s:%s/metrics (not on the api port)", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
