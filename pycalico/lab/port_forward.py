"""A host port forwarded into a lab namespace, as `kubectl port-forward` reaches Whisker:
each connection accepted on 127.0.0.1 is joined to a new connection made inside the
namespace, bytes copied both ways until either side closes."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

_CHUNK = 1 << 16


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        # The other direction may still have bytes to deliver: close only this half.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _join(client: socket.socket, dial: Callable[[], socket.socket]) -> None:
    try:
        upstream = dial()
    except OSError:
        client.close()
        return
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


def listen(port: int) -> socket.socket:
    """The host side, on loopback only: the aggregator's API has no authentication."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.5)
    return server


def serve(server: socket.socket, dial: Callable[[], socket.socket], stop: threading.Event) -> None:
    """Accept and join connections until `stop` is set."""
    while not stop.is_set():
        try:
            client, _ = server.accept()
        except TimeoutError:
            continue
        client.settimeout(None)
        threading.Thread(target=_join, args=(client, dial), daemon=True).start()
