"""A node made of network namespaces, for integration tests: removed again, whatever happens.

`node_namespace()` gives a namespace with `eth0` (address given) on a veth whose other end
sits in a peer namespace, both up, plus `lo` up and, optionally, a default route — the
minimum a Calico node needs (proxy ARP for 169.254.1.1 relies on that route).
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass


def sh(ns: str, *cmd: str, check: bool = True) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=check
    ).stdout


@dataclass(frozen=True)
class NodeNamespace:
    ns: str
    peer: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.ns}"


@contextlib.contextmanager
def bare_namespace(prefix: str) -> Iterator[str]:
    """A namespace with nothing in it, by name; removed again, whatever happens."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextlib.contextmanager
def node_namespace(
    prefix: str, address: str = "192.0.2.11/24", gateway: str | None = None
) -> Iterator[NodeNamespace]:
    tag = uuid.uuid4().hex[:6]
    node = NodeNamespace(f"{prefix}-{tag}", f"{prefix}p-{tag}")
    for name in (node.ns, node.peer):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(
            [
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                node.ns,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node.peer,
            ],
            check=True,
        )
        sh(node.ns, "ip", "addr", "add", address, "dev", "eth0")
        for ns in (node.ns, node.peer):
            sh(ns, "ip", "link", "set", "eth0", "up")
            sh(ns, "ip", "link", "set", "lo", "up")
        if gateway:
            sh(node.ns, "ip", "route", "add", "default", "via", gateway, "dev", "eth0")
        yield node
    finally:
        for name in (node.ns, node.peer):
            subprocess.run(["ip", "netns", "del", name], check=False)
