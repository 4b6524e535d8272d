"""The aggregator's collector port: one thread per connected Felix, reading numbered
records and acknowledging them (protocol in wire.py).

Each read may bring many records; they are taken in order and acknowledged with one
cumulative ack, so a busy sender costs one write back per read, not per record.
"""

from __future__ import annotations

import logging
import socket
import socketserver

from pycalico.flows import wire
from pycalico.flows.aggregator import Aggregator

log = logging.getLogger("pycalico.flows")

_RECV = 1 << 16
# A sender that says nothing for this long after connecting is not a Felix.
HELLO_TIMEOUT = 10.0


class CollectorServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], aggregator: Aggregator) -> None:
        self.aggregator = aggregator
        super().__init__(address, _Connection)


class _Connection(socketserver.BaseRequestHandler):
    server: CollectorServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        host, port = self.client_address[:2]
        peer = f"{host}:{port}"
        try:
            self._serve(sock, peer)
        except wire.WireError as exc:
            log.warning("closing the connection from %s: %s", peer, exc)
        except OSError as exc:
            log.info("connection from %s ended: %s", peer, exc)

    def _serve(self, sock: socket.socket, peer: str) -> None:
        aggregator = self.server.aggregator
        lines = wire.LineBuffer()
        sock.settimeout(HELLO_TIMEOUT)
        pending: list[bytes] = []
        while not pending:
            data = sock.recv(_RECV)
            if not data:
                return
            pending = lines.feed(data)
        hello = wire.decode(pending.pop(0))
        if not isinstance(hello, wire.Hello):
            raise wire.WireError("the first message must be hello")
        if hello.protocol != wire.PROTOCOL:
            raise wire.WireError(
                f"protocol {hello.protocol} (this aggregator speaks {wire.PROTOCOL})"
            )
        sock.settimeout(None)
        sender = hello.sender
        sock.sendall(wire.welcome(aggregator.highest(sender)))
        log.info("%s connected as %s", peer, sender)
        while True:
            acked, rejected = 0, []
            for line in pending:
                message = wire.decode(line)
                if not isinstance(message, wire.Record):
                    raise wire.WireError(f"expected a record, got {type(message).__name__}")
                if not aggregator.receive(sender, message.seq, message.flow):
                    rejected.append(message.seq)
                acked = message.seq
            if acked:
                sock.sendall(wire.ack(acked, tuple(rejected)))
            data = sock.recv(_RECV)
            if not data:
                log.info("%s (%s) disconnected", peer, sender)
                return
            pending = lines.feed(data)
