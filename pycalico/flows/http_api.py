"""whisker-backend's HTTP API over the aggregator (reference flows.md §7):

    GET /flows                  {"total": {"totalPages": N}, "items": [...]}
    GET /flows?watch=true       text/event-stream: `data: <item>` and a blank line per flow
    GET /flows-filter-hints     {"total": {"totalPages": N}, "items": [{"value": ...}]}
    GET /                       the web console (Whisker's role; pycalico/flows/console)
    GET /metrics                Goldmane's Prometheus metrics (Goldmane serves them on a
                                port of its own; here they share the API's)

The console is three static files shipped with the package, read once and served from
memory; it asks the same API from the browser, so it needs nothing else.

A bad query is a 400 with `{"error": "<one line>"}`. A stream first sends what the window
holds from its start time, then, every tick, each bucket aggregate that changed (an
aggregate that grows later is sent again, whole), and a comment line when there was
nothing, so that a client gone away is noticed.
"""

from __future__ import annotations

import json
import logging
import queue
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pycalico.flows import query, whisker_json
from pycalico.flows.aggregator import Aggregator
from pycalico.flows.metrics import GoldmaneMetrics
from pycalico.metrics import exposition
from pycalico.metrics.registry import new_registry

log = logging.getLogger("pycalico.flows")

KEEPALIVE_SECONDS = 15.0


def _console() -> dict[str, tuple[bytes, str]]:
    files = resources.files("pycalico.flows") / "console"
    page = (files / "index.html").read_bytes()
    return {
        "/": (page, "text/html; charset=utf-8"),
        "/console/": (page, "text/html; charset=utf-8"),
        "/console/console.js": (
            (files / "console.js").read_bytes(),
            "text/javascript; charset=utf-8",
        ),
        "/console/console.css": ((files / "console.css").read_bytes(), "text/css; charset=utf-8"),
    }


CONSOLE = _console()


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], aggregator: Aggregator) -> None:
        self.aggregator = aggregator
        self.metrics = new_registry(GoldmaneMetrics(aggregator))
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    server_version = "pycalico-whisker-backend"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            params = parse_qs(url.query, keep_blank_values=True, strict_parsing=False)
            if url.path == "/flows":
                self._flows(query.parse_list_query(params))
            elif url.path == "/flows-filter-hints":
                items, pages = self.server.aggregator.hints(query.parse_hints_query(params))
                self._json(200, whisker_json.list_json(items, pages))
            elif url.path in CONSOLE:
                body, content_type = CONSOLE[url.path]
                self._reply(200, body, content_type)
            elif url.path == "/metrics":
                self._reply(200, exposition.text(self.server.metrics), exposition.CONTENT_TYPE)
            else:
                self._json(404, {"error": f"no such path: {url.path}"})
        except query.QueryError as exc:
            self._json(400, {"error": str(exc)})

    def _method_not_allowed(self) -> None:
        self._json(405, {"error": f"{self.command} is not supported; use GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _flows(self, q: query.ListQuery) -> None:
        if not q.watch:
            items, pages = self.server.aggregator.list(q)
            self._json(200, whisker_json.list_json(items, pages))
            return
        aggregator = self.server.aggregator
        sub, backlog = aggregator.subscribe(q)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for flow in backlog:
                self._event(whisker_json.flow_json(flow))
            self.wfile.flush()
            while True:
                try:
                    flow = sub.events.get(timeout=KEEPALIVE_SECONDS)
                except queue.Empty:  # nothing changed for a while
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                if flow is None:
                    if sub.overflowed:
                        self.wfile.write(b"error: the stream fell too far behind\n\n")
                    return
                self._event(whisker_json.flow_json(flow))
                if sub.events.empty():
                    self.wfile.flush()
        except OSError:
            return  # the client went away
        finally:
            aggregator.unsubscribe(sub)

    def _event(self, item: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(item, separators=(",", ":")).encode() + b"\n\n")

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._reply(status, json.dumps(body).encode() + b"\n", "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
