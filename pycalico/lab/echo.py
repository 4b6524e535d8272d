"""A tiny server for lab namespaces: answers each TCP connection or UDP datagram with the
address it came from, so probes can see both reachability and source NAT.

Usage: python -m pycalico.lab.echo 80,8080,53/udp
"""

from __future__ import annotations

import selectors
import socket
import sys


def parse(spec: str) -> list[tuple[int, str]]:
    ports = []
    for item in spec.split(","):
        port, _, proto = item.strip().partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad port {item!r}: use PORT or PORT/udp (1-65535)")
        ports.append((int(port), proto))
    return ports


def serve(ports: list[tuple[int, str]]) -> None:
    sel = selectors.DefaultSelector()
    for port, proto in ports:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        if proto == "tcp":
            sock.listen(64)
        sel.register(sock, selectors.EVENT_READ, proto)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if key.data == "tcp":
                    conn, (peer, _) = sock.accept()
                    with conn:
                        conn.sendall(f"{peer}\n".encode())
                else:
                    _, (peer, port) = sock.recvfrom(2048)
                    # Logged before replying: a source with no way back is still seen.
                    print(f"udp {peer}", flush=True)
                    sock.sendto(f"{peer}\n".encode(), (peer, port))
                    continue
                print(f"tcp {peer}", flush=True)
            except OSError as exc:
                print(f"error {exc}", flush=True)  # one bad peer must not stop the server


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m pycalico.lab.echo PORT[/udp][,...]\n")
        return 2
    try:
        serve(parse(sys.argv[1]))
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"echo: {exc}\n")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
