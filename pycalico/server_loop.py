"""Serve a socketserver on a thread that sleeps until a client comes, and stops at once.

`serve_forever` wakes every `poll_interval` (0.5 s by default) only to look whether
`shutdown()` was asked for: calico-node runs three servers (health, metrics, the CNI
agent), six wake-ups a second of an idle node, a hundred nodes' worth of which was most
of a lab's idle CPU (bench/scale.py). Here the thread blocks on the listening socket and a
pipe that `stop()` writes to.
"""

from __future__ import annotations

import os
import selectors
import socketserver
import threading


class ServerThread:
    def __init__(self, server: socketserver.BaseServer, name: str) -> None:
        self.server = server
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.server, selectors.EVENT_READ, "client")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while True:
                ready = [key.data for key, _ in selector.select()]
                if "stop" in ready:
                    return
                # What serve_forever does for a ready socket: accept, then handle the
                # request (a ThreadingMixIn server hands it to a thread of its own).
                self.server._handle_request_noblock()  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop serving (requests being handled finish on their own threads), then close."""
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.server.server_close()
