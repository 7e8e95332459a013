"""`/metrics`, `/healthz` and `/readyz` on one small HTTP server beside the consumer.

- `/healthz` (Kubernetes livenessProbe): is the process alive? The poll loop turned within
  `max_loop_age` seconds and the consumer's own threads run. Nothing outside the process
  counts: a GMS, registry, Kafka or AWS outage must not get the pod restarted, which would
  kill the synchronous Lambda invocations still in flight (docs/operations.md).
- `/readyz` (readinessProbe): can it do its work? A member of the consumer group with its
  assignment settled (which may hold no MCL partition, or nothing at all when the group has more
  members than partitions: it stands by) and no dependency known to be down; the JSON names the
  failing ones (`failing`), the partitions held and the mapping hash in force.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], tuple[bool, dict[str, object]]]


class HealthServer:
    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, live: Check, ready: Check
    ) -> None:
        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    ok, detail = (live if path == "/healthz" else ready)()
                    body = json.dumps({"status": "ok" if ok else "unavailable", **detail}).encode()
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(
                self, format: str, *args: object
            ) -> None:  # scrapes every few seconds: no access log
                pass

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )
        self.port: int = int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def liveness(
    last_loop: float,
    *,
    max_loop_age: float = 60.0,
    threads: Mapping[str, threading.Thread | None] | None = None,
) -> tuple[bool, dict[str, object]]:
    """`last_loop`: time.monotonic() of the poll loop's latest turn. `threads`: threads that
    must be alive while the consumer runs (None: not started yet, not counted)."""
    age = time.monotonic() - last_loop
    dead = sorted(name for name, t in (threads or {}).items() if t is not None and not t.is_alive())
    detail: dict[str, object] = {"loopAgeSeconds": round(age, 1)}
    if dead:
        detail["deadThreads"] = dead
    return age < max_loop_age and not dead, detail


def readiness(*parts: tuple[bool, dict[str, object]]) -> tuple[bool, dict[str, object]]:
    """Ready when every part is; the details merged into one JSON object."""
    detail: dict[str, object] = {}
    for _, part in parts:
        detail.update(part)
    return all(ok for ok, _ in parts), detail
