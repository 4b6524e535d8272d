"""A node with one pod and an outside host, as network namespaces, for host-protection tests.

    outside (192.0.2.1/24, 203.0.113.5 on lo) --eth0-- node (192.0.2.11/24) --caliX-- pod

The outside host stands for the internet (TEST-NET addresses); it reaches the pod network
through the node. Echo servers: the node on 22, 8080, 8081; the pod on 80, 81; the outside
host on 179 and 8081. Everything is removed again, whatever happens.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.node_namespace import node_namespace, sh

NODE_IP = "192.0.2.11"
OUTSIDE_IP = "192.0.2.1"
EXTERNAL_IP = "203.0.113.5"  # the outside host's "internet" address
POD_IP = "10.65.0.2"
POD_NET = "10.65.0.0/16"


@dataclass(frozen=True)
class HostNet:
    node: str
    outside: str
    pod: str
    pod_iface: str

    @property
    def node_path(self) -> str:
        return f"/run/netns/{self.node}"


def _echo(ns: str, ports: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "pycalico.lab.echo", ports],
        stdout=subprocess.DEVNULL,
    )


def connects(ns: str, ip: str, port: int, source: str = "", timeout: float = 1.0) -> bool:
    """Whether a TCP connection from namespace `ns` (from address `source`) gets through."""
    bind = f"s.bind(('{source}',0))\n" if source else ""
    code = (
        "import socket,sys\n"
        f"s=socket.socket();s.settimeout({timeout})\n{bind}"
        f"sys.exit(0 if s.connect_ex(('{ip}',{port}))==0 else 1)\n"
    )
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=False)
    return done.returncode == 0


def _wait_listening(ns: str, ip: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while not connects(ns, ip, port, timeout=0.5):
        if time.monotonic() > deadline:
            raise AssertionError(f"echo server on {ip}:{port} did not start")
        time.sleep(0.05)


@contextlib.contextmanager
def host_net() -> Iterator[HostNet]:
    tag = uuid.uuid4().hex[:6]
    servers: list[subprocess.Popen[bytes]] = []
    # The default route also lets proxy ARP answer the pod for 169.254.1.1.
    with node_namespace("hep", f"{NODE_IP}/24", gateway=OUTSIDE_IP) as node:
        net = HostNet(node.ns, node.peer, f"hep-{tag}-pod", f"calihep{tag}")
        subprocess.run(["ip", "netns", "add", net.pod], check=True)
        try:
            sh(net.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            sh(net.outside, "ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
            sh(net.outside, "ip", "addr", "add", f"{EXTERNAL_IP}/32", "dev", "lo")
            sh(net.outside, "ip", "route", "add", POD_NET, "via", NODE_IP)
            veth = ("type", "veth", "peer", "name", "eth0", "netns", net.pod)
            subprocess.run(
                ["ip", "link", "add", net.pod_iface, "netns", net.node, *veth], check=True
            )
            sh(net.node, "ip", "link", "set", net.pod_iface, "up")
            sh(net.node, "sysctl", "-qw", f"net.ipv4.conf.{net.pod_iface}.proxy_arp=1")
            sh(net.node, "sysctl", "-qw", f"net.ipv4.neigh.{net.pod_iface}.proxy_delay=0")
            sh(net.node, "ip", "route", "add", f"{POD_IP}/32", "dev", net.pod_iface)
            for cmd in (
                ("ip", "link", "set", "lo", "up"),
                ("ip", "link", "set", "eth0", "up"),
                ("ip", "addr", "add", f"{POD_IP}/32", "dev", "eth0"),
                ("ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"),
                ("ip", "route", "add", "default", "via", "169.254.1.1"),
            ):
                sh(net.pod, *cmd)
            servers += [
                _echo(net.node, "22,8080,8081"),
                _echo(net.pod, "80,81"),
                _echo(net.outside, "179,8081"),
            ]
            for ns, ip, port in (
                (net.outside, NODE_IP, 8080),
                (net.outside, POD_IP, 80),
                (net.node, OUTSIDE_IP, 179),
            ):
                _wait_listening(ns, ip, port)
            yield net
        finally:
            for server in servers:
                server.kill()
                server.wait()
            subprocess.run(["ip", "netns", "del", net.pod], check=False)
