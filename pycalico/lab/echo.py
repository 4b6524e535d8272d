"""A tiny server for lab namespaces: answers each TCP connection or UDP datagram with the
address it came from, so probes can see both reachability and source NAT.

A TCP client that sends an HTTP request (curl, wget) gets an HTTP response whose body says
who answered and whom it saw, as the seeds' test pods do:
`PodName: default/web | PodIP: 10.244.1.5 | ClientIP: 10.244.2.7`. Any other client gets the
bare address line as soon as it sends anything, or after GREETING_DELAY if it sends nothing
(`nc`); the lab's own probes send a line so that they never wait.

Usage: python -m pycalico.lab.echo 80,8080,53/udp [NAME]
"""

from __future__ import annotations

import selectors
import socket
import sys
import time
from dataclasses import dataclass

GREETING_DELAY = 0.3
MAX_REQUEST = 16384
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")


def parse(spec: str) -> list[tuple[int, str]]:
    ports = []
    for item in spec.split(","):
        port, _, proto = item.strip().partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port {item!r}: use PORT or PORT/udp (1-65535)")
        ports.append((int(port), proto))
    return ports


def answer(request: bytes, name: str, local: str, peer: str) -> bytes | None:
    """What to send a TCP client that has sent `request` so far; None: wait for more (pure)."""
    if not any(request.startswith(m) or m.startswith(request) for m in HTTP_METHODS):
        return f"{peer}\n".encode()
    if b"\r\n\r\n" not in request and b"\n\n" not in request and len(request) < MAX_REQUEST:
        return None
    body = f"PodName: {name} | PodIP: {local} | ClientIP: {peer}\n".encode()
    head = request.split(b" ", 1)[0]
    return (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + (b"" if head == b"HEAD" else body)
    )


@dataclass
class _Client:
    conn: socket.socket
    peer: str
    local: str
    deadline: float
    received: bytes = b""


def _finish(sel: selectors.BaseSelector, client: _Client, reply: bytes, what: str) -> None:
    sel.unregister(client.conn)
    try:
        client.conn.setblocking(True)
        client.conn.settimeout(1.0)
        client.conn.sendall(reply)
        print(f"{what} {client.peer}", flush=True)
    except OSError as exc:
        print(f"error {exc}", flush=True)  # one bad peer must not stop the server
    finally:
        client.conn.close()


def serve(ports: list[tuple[int, str]], name: str = "") -> None:
    sel = selectors.DefaultSelector()
    for port, proto in ports:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        if proto == "tcp":
            sock.listen(64)
        sel.register(sock, selectors.EVENT_READ, proto)
    waiting: dict[socket.socket, _Client] = {}
    while True:
        now = time.monotonic()
        timeout = min((c.deadline for c in waiting.values()), default=now + 60) - now
        for key, _ in sel.select(max(0.0, timeout)):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if key.data == "tcp":
                    conn, (peer, _) = sock.accept()
                    conn.setblocking(False)
                    local = conn.getsockname()[0]
                    client = _Client(conn, peer, local, time.monotonic() + GREETING_DELAY)
                    waiting[conn] = client
                    sel.register(conn, selectors.EVENT_READ, "client")
                elif key.data == "client":
                    client = waiting[sock]
                    data = sock.recv(4096)
                    client.received += data
                    reply = answer(client.received, name, client.local, client.peer)
                    if reply is None and data:
                        continue
                    del waiting[sock]
                    http = reply is not None and reply.startswith(b"HTTP/")
                    _finish(
                        sel, client, reply or f"{client.peer}\n".encode(), "http" if http else "tcp"
                    )
                else:
                    _, (peer, port) = sock.recvfrom(2048)
                    # Logged before replying: a source with no way back is still seen.
                    print(f"udp {peer}", flush=True)
                    sock.sendto(f"{peer}\n".encode(), (peer, port))
            except OSError as exc:
                print(f"error {exc}", flush=True)  # one bad peer must not stop the server
        now = time.monotonic()
        for conn, client in list(waiting.items()):
            if client.deadline <= now:
                del waiting[conn]
                _finish(sel, client, f"{client.peer}\n".encode(), "tcp")


def main() -> int:
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: python -m pycalico.lab.echo PORT[/udp][,...] [NAME]\n")
        return 2
    try:
        serve(parse(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else "")
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"echo: {exc}\n")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
