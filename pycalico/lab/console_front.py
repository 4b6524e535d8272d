"""What `calico-lab console` serves on its 127.0.0.1 port: the lab page under /lab/ (made
here, by calico-lab, which has the lab's record and root), and everything else relayed to
the lab's calico-goldmane, as `kubectl port-forward` reaches Whisker.

One origin for both, so the flow console and the lab page link to each other by path
(calico-goldmane, which knows nothing of the lab, can link to /lab/ without knowing any
port). Each connection carries one request (HTTP/1.0, as calico-goldmane answers): the
request line tells where it goes; a relayed request is sent on with `Connection: close` and
calico-goldmane's answer copied back byte for byte until it closes, so its event stream
flows as it is written.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pycalico.lab import lab_page
from pycalico.lab.page_requests import MAX_BODY, RequestError, check_host, check_json
from pycalico.lab.state import LabError

log = logging.getLogger("pycalico.lab.console")

_CHUNK = 1 << 16
MAX_RELAYED_BODY = 1 << 20
# Hop-by-hop headers (RFC 9110 §7.6.1): they concern this connection, not the next one.
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}


class ConsoleFront(ThreadingHTTPServer):
    """Listens on loopback only: neither the lab page nor calico-goldmane's API has
    authentication, and the page runs traces as root."""

    daemon_threads = True

    def __init__(self, port: int, page: lab_page.LabPage, dial: Callable[[], socket.socket]):
        self.page = page
        self.dial = dial
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not socketserver's traceback, for what escapes a handler."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            log.error("a request from %s failed: %r", client_address[0], error)


class _Handler(BaseHTTPRequestHandler):
    server: ConsoleFront
    server_version = "calico-lab-console"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _route(self) -> None:
        path = urlsplit(self.path).path
        if path == "/lab" or path.startswith("/lab/"):
            self._lab()
        else:
            self._relay()

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _route

    # --- the lab page ---

    def _lab(self) -> None:
        url = urlsplit(self.path)
        page = self.server.page
        try:
            check_host(self.headers.get("Host"))
            if url.path == "/lab":
                self._redirect("/lab/")
            elif url.path in lab_page.FILES:
                self._only("GET")
                self._reply(200, *lab_page.FILES[url.path])
            elif url.path == "/lab/api/lab":
                self._only("GET")
                self._json(200, page.summary())
            elif url.path == "/lab/api/graph":
                self._only("GET")
                self._reply(200, page.graph().encode(), lab_page.SVG)
            elif url.path == "/lab/api/policies":
                self._only("GET")
                self._json(200, page.policies(url.query))
            elif url.path == "/lab/api/trace":
                self._only("POST")
                check_json(self.headers.get_content_type())
                body = page.trace(self._body(MAX_BODY))
                self._reply(200, body.encode(), lab_page.JSON)
            else:
                self._json(404, {"error": f"no such path: {url.path}"})
        except RequestError as exc:
            self._json(exc.status, {"error": str(exc)})
        except LabError as exc:
            self._json(500, {"error": str(exc)})
        except ConnectionError:
            return  # the browser went away before the answer
        except Exception as exc:  # the page gets one line, never a traceback
            log.error("%s %s failed: %s: %s", self.command, url.path, type(exc).__name__, exc)
            self._json(500, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})

    def _only(self, method: str) -> None:
        if self.command != method:
            raise RequestError(f"{self.command} is not supported here; use {method}", 405)

    def _body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise RequestError("send the body with a Content-Length", 411)
        text = self.headers.get("Content-Length", "0")
        if not text.isascii() or not text.isdigit():
            raise RequestError(f"bad Content-Length {text[:20]!r}")
        length = int(text)
        if length > limit:
            raise RequestError(f"the request is larger than {limit} bytes", 413)
        return self.rfile.read(length)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._reply(status, json.dumps(body, ensure_ascii=False).encode() + b"\n", lab_page.JSON)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- everything else: calico-goldmane ---

    def _relay(self) -> None:
        self.close_connection = True
        try:
            body = self._body(MAX_RELAYED_BODY)
        except RequestError as exc:
            self._json(exc.status, {"error": str(exc)})
            return
        try:
            upstream = self.server.dial()
        except OSError as exc:
            self._json(502, {"error": f"calico-goldmane does not answer: {exc}"})
            return
        with upstream:
            # The event stream may be quiet for a keepalive's interval: no read timeout.
            upstream.settimeout(None)
            lines = [self.requestline]
            lines += [f"{k}: {v}" for k, v in self.headers.items() if k.lower() not in _HOP]
            lines += ["Connection: close", "", ""]
            try:
                upstream.sendall("\r\n".join(lines).encode("latin-1") + body)
                while chunk := upstream.recv(_CHUNK):
                    self.wfile.write(chunk)
            except OSError:
                return  # either side went away: the other is closed with it
