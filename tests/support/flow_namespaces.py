"""Two namespaces joined by a veth pair, the server's with a test nftables table whose rules
log new connections to NFLOG groups with Felix's prefixes, for the collector's kernel
tests and bench/nflog_conntrack.py. Removed again (table, namespaces), whatever happens.

    client 198.51.100.1, 2001:db8:20::1  --veth--  server 198.51.100.2, 2001:db8:20::2
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from pycalico.netns import in_netns
from tests.support.node_namespace import node_namespace, sh

CLIENT4, SERVER4 = "198.51.100.1", "198.51.100.2"
CLIENT6, SERVER6 = "2001:db8:20::1", "2001:db8:20::2"
TABLE = "flowtest"
INGRESS_GROUP = 5
EGRESS_GROUP = 6
ALLOWED_PORT = 7001  # logged as allowed by a rule of a global policy, then accepted
DENIED_PORT = 7002  # logged as a tier's end, then dropped
PROFILE_UDP_PORT = 7003  # logged as allowed by a profile rule
DNAT_PORT = 7100  # translated to ALLOWED_PORT before the input chain
ALLOW_PREFIX = "API0|gnp/allow-web"
DENY_PREFIX = "DPI|default"
PROFILE_PREFIX = "ARI1|pro/kns.shop"
EGRESS_PREFIX = "APE2|np/shop/to-anywhere"

RULESET = f"""
table inet {TABLE} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport {DNAT_PORT} dnat ip to {SERVER4}:{ALLOWED_PORT}
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    tcp dport {ALLOWED_PORT} ct state new log prefix "{ALLOW_PREFIX}" group {INGRESS_GROUP} accept
    tcp dport {DENIED_PORT} ct state new log prefix "{DENY_PREFIX}" group {INGRESS_GROUP} drop
    udp dport {PROFILE_UDP_PORT} ct state new \
      log prefix "{PROFILE_PREFIX}" group {INGRESS_GROUP} accept
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    ct state established,related accept
    meta l4proto icmp ct state new log prefix "{EGRESS_PREFIX}" group {EGRESS_GROUP} accept
  }}
}}
"""


@dataclass(frozen=True)
class Pair:
    server: str  # namespace paths
    client: str

    def in_server(self, work):  # type: ignore[no-untyped-def]
        return in_netns(self.server, work)

    def in_client(self, work):  # type: ignore[no-untyped-def]
        return in_netns(self.client, work)


@contextlib.contextmanager
def logging_pair(prefix: str = "flc") -> Iterator[Pair]:
    with node_namespace(prefix, address=f"{SERVER4}/24") as node:
        sh(node.peer, "ip", "addr", "add", f"{CLIENT4}/24", "dev", "eth0")
        sh(node.ns, "ip", "-6", "addr", "add", f"{SERVER6}/64", "dev", "eth0", "nodad")
        sh(node.peer, "ip", "-6", "addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
        subprocess.run(
            ["ip", "netns", "exec", node.ns, "nft", "-f", "-"],
            input=RULESET, text=True, check=True, capture_output=True,
        )  # fmt: skip
        try:
            yield Pair(node.path, f"/run/netns/{node.peer}")
        finally:
            sh(node.ns, "nft", "delete", "table", "inet", TABLE, check=False)


class EchoServer:
    """A TCP server in the server namespace that reads what each client sends, answers it
    with as many bytes, and closes (the client's side then closes too)."""

    def __init__(self, pair: Pair, family: int, address: str, port: int) -> None:
        def make() -> socket.socket:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(4096)
            return sock

        self._sock: socket.socket = pair.in_server(make)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                if data:
                    conn.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=10)


def connect(
    pair: Pair, family: int, address: str, port: int, payload: bytes = b"", timeout: float = 5.0
) -> tuple[int, bytes]:
    """From the client namespace: connect, send `payload`, read the answer until the server
    closes; (the local port, what came back)."""

    def make() -> socket.socket:
        return socket.socket(family, socket.SOCK_STREAM)

    sock: socket.socket = pair.in_client(make)
    with sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        local_port = int(sock.getsockname()[1])
        sock.sendall(payload)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
        return local_port, got
