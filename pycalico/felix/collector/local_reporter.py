"""`flowLogsLocalReporter: Enabled`: this node's flows served on a unix socket with the
aggregator's HTTP API (whisker-backend's `GET /flows`, `?watch=true`,
`/flows-filter-hints`), as Calico's Felix serves them on
`unix:///var/run/calico/flows/flows.sock` (reference flows.md §3).

An in-process aggregator takes the records Felix flushes; the socket is readable by root
only (0600), as the API has no authentication.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

from pycalico.flows.aggregator import Aggregator
from pycalico.flows.http_api import ApiServer
from pycalico.flows.record import Flow
from pycalico.flows.window import WindowSettings
from pycalico.server_loop import ServerThread

SOCKET_NAME = os.path.join("flows", "flows.sock")
SENDER = "local"


class _UnixApiServer(ApiServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        # HTTPServer's own bind reads a host and port from the address.
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "localhost", 0

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, _ = self.socket.accept()
        return sock, ("local", 0)  # handlers log a client address; a unix peer has none


class LocalReporter:
    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, SOCKET_NAME)
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a previous calico-node's
        self.aggregator = Aggregator(WindowSettings(), time.time)
        self._server = _UnixApiServer(self.path, self.aggregator)  # type: ignore[arg-type]
        os.chmod(self.path, 0o600)
        self._seq = 0
        self._stop = threading.Event()
        self._serving = ServerThread(self._server, "flows-local")
        self._ticking = threading.Thread(target=self._tick, daemon=True, name="flows-local-tick")
        self._ticking.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.aggregator.settings.bucket_seconds):
            self.aggregator.tick()

    def send(self, flow: Flow) -> None:
        self._seq += 1
        self.aggregator.receive(SENDER, self._seq, flow.to_json())

    def close(self) -> None:
        self._stop.set()
        self.aggregator.close_streams()
        self._serving.stop()
        self._ticking.join()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
