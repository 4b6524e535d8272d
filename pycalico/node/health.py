"""calico-node's health (`/liveness`, `/readiness`) and Prometheus metrics endpoints.

The metrics themselves are Felix's (pycalico.felix.metrics); this only serves them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pycalico.server_loop import ServerThread

# Prometheus's text format, as pycalico.metrics.exposition writes it (not imported here:
# the health server has no need of prometheus_client).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Status:
    """What the health and metrics endpoints report; updated by the node's components."""

    started: float = field(default_factory=time.monotonic)
    ready: bool = False  # Felix has applied the dataplane
    bird_ready: bool = True  # BIRD runs its current config (always true without BIRD)
    bird_error: str = ""
    last_loop: float = field(default_factory=time.monotonic)
    applies: int = 0
    apply_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # Felix's loop wakes at least every resync period; three missed periods means it is stuck.
    def live(self, stall_seconds: float) -> bool:
        return time.monotonic() - self.last_loop < stall_seconds

    def is_ready(self) -> bool:
        with self.lock:
            return self.ready and self.bird_ready

    def not_ready_because(self) -> str:
        """Why the node is not ready, worded as Calico's readiness check words it; "" if it is."""
        with self.lock:
            if not self.ready:
                felix = (
                    "its last dataplane apply failed"
                    if self.apply_failures and self.applies
                    else "it has not applied the dataplane yet"
                )
                return f"calico/node is not ready: Felix is not ready: {felix}"
            if not self.bird_ready:
                why = f": {self.bird_error}" if self.bird_error else ""
                return f"calico/node is not ready: BIRD is not ready{why}"
            return ""


def serve(
    host: str,
    port: int,
    status: Status,
    stall_seconds: float,
    metrics: Callable[[], bytes] | None = None,
) -> ServerThread:
    """Start a server (its own thread) for health, or for `metrics()` (the Prometheus text,
    made on each scrape) when given."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if metrics is not None and self.path == "/metrics":
                self._reply(200, metrics(), METRICS_CONTENT_TYPE)
            elif metrics is None and self.path == "/liveness":
                ok = status.live(stall_seconds)
                self._reply(200 if ok else 503, "ok\n" if ok else "stalled\n")
            elif metrics is None and self.path == "/readiness":
                reason = status.not_ready_because()
                self._reply(503 if reason else 200, f"{reason or 'ok'}\n")
            else:
                self._reply(404, "not found\n")

        def _reply(self, code: int, body: str | bytes, ctype: str = "text/plain") -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass  # quiet by default: probes every few seconds would flood the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return ServerThread(server, f"http-{port}")
