"""The lab end to end: real calico-node processes, real packets, all inside namespaces."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pycalico.cni.dataplane import in_netns
from pycalico.lab import cluster
from pycalico.lab.state import ROOT, LabState

pytestmark = pytest.mark.e2e

LAB = os.path.join(os.path.dirname(sys.executable), "calico-lab")


def lab(*args: str, stdin: str | None = None, check: bool = True) -> str:
    out = subprocess.run([LAB, *args], input=stdin, capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"calico-lab {' '.join(args)} failed: {out.stderr}")
    return out.stdout


@pytest.fixture
def make_lab() -> Iterator[Callable[..., str]]:
    names: list[str] = []

    def up(*options: str) -> str:
        name = f"e{uuid.uuid4().hex[:5]}"
        names.append(name)
        lab("up", "--name", name, *options)
        return name

    yield up
    for name in names:
        lab("down", "--name", name, check=False)
        leftovers = [
            n
            for n in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, check=True
            ).stdout.split()
            if n.startswith(f"{name}-")
        ]
        assert leftovers == [], f"down left namespaces behind: {leftovers}"
        assert not os.path.exists(os.path.join(ROOT, name))


def pod_ip(name: str, pod: str) -> str:
    state = LabState.load(name)
    return state.pods[f"default/{pod}"].ip


def ping_three(name: str, pod: str, address: str) -> None:
    lab("exec", f"default/{pod}", "--name", name, "--", "ping", "-c3", "-i0.2", "-W2", address)


def test_flat_vxlan_pods_reach_each_other_and_the_outside_through_nat(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "3")
    for n in (1, 2, 3):
        for role in ("a", "b"):
            lab(
                "pod",
                "add",
                f"{role}{n}",
                "--node",
                f"node{n}",
                "--serve",
                "80,53/udp",
                "--name",
                name,
            )
    matrix = lab("probe", "--name", name)
    assert "FAIL" not in matrix
    state = LabState.load(name)
    for n in (1, 2, 3):
        node_ip = state.node_ips[f"node{n}"].split("/")[0]
        assert f"ok (as {node_ip})" in matrix  # natOutgoing: the outside sees the node
    # A pool without natOutgoing: its pods keep their own address on the way out.
    lab(
        "exec",
        "node1",
        "--name",
        name,
        "--",
        "calicoctl",
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: nonat}\n"
        "spec: {cidr: 10.250.0.0/16, vxlanMode: Always}\n",
    )
    ip = lab(
        "pod",
        "add",
        "plain",
        "--node",
        "node2",
        "--name",
        name,
        "--annotation",
        'cni.projectcalico.org/ipv4pools=["nonat"]',
    ).strip()
    assert ip.startswith("10.250.")
    lab(
        "exec",
        "default/plain",
        "--name",
        name,
        "--",
        sys.executable,
        "-c",
        "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.sendto(b'x',('203.0.113.1',53))",
    )
    deadline = time.monotonic() + 5
    seen = ""
    while time.monotonic() < deadline and ip not in seen:
        with open(state.path("external.log"), encoding="utf-8") as log:
            seen = log.read()
        time.sleep(0.1)
    assert f"udp {ip}" in seen


class Capture:
    """Counts packets on one interface of a namespace (AF_PACKET), by kind."""

    def __init__(self, netns: str, ifname: str) -> None:
        self.netns, self.ifname = netns, ifname
        self.vxlan = 0
        self.plain_icmp = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Capture:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        def listen() -> None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            sock.bind((self.ifname, 0))
            sock.settimeout(0.1)
            self._ready.set()
            with sock:
                while not self._stop.is_set():
                    try:
                        frame = sock.recv(65535)
                    except TimeoutError:
                        continue
                    if frame[12:14] != b"\x08\x00":
                        continue  # not IPv4 (ARP and the like)
                    ip = frame[14:]
                    proto = ip[9]
                    header = (ip[0] & 0x0F) * 4
                    if proto == 17 and struct.unpack("!H", ip[header + 2 : header + 4])[0] == 4789:
                        self.vxlan += 1
                    elif proto == 1:
                        self.plain_icmp += 1

        in_netns(f"/run/netns/{self.netns}", listen)


def test_cross_subnet_encapsulates_only_between_subnets(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "3", "--topology", "two-subnet", "--cross-subnet")
    state = LabState.load(name)
    for n in (1, 2, 3):
        lab("pod", "add", f"p{n}", "--node", f"node{n}", "--name", name)
    routes = lab("exec", "node1", "--name", name, "--", "ip", "route")
    node2 = state.node_ips["node2"].split("/")[0]
    node3 = state.node_ips["node3"].split("/")[0]
    assert f"via {node2} dev eth0" in routes  # same subnet: routed directly
    assert "dev vxlan.calico" in routes and node3 not in routes  # other subnet: encapsulated
    net = cluster.ns_name(name, "net")
    with Capture(net, "n2") as same:
        ping_three(name, "p1", pod_ip(name, "p2"))
    assert same.vxlan == 0 and same.plain_icmp >= 6
    with Capture(cluster.ns_name(name, "router"), "eth1") as cross:
        ping_three(name, "p1", pod_ip(name, "p3"))
    assert cross.vxlan >= 6 and cross.plain_icmp == 0


def test_killing_calico_node_does_not_disturb_running_traffic(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2")
    lab("pod", "add", "src", "--node", "node1", "--name", name)
    lab("pod", "add", "dst", "--node", "node2", "--name", name)
    state = LabState.load(name)
    ping = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            state.pods["default/src"].netns,
            "ping",
            "-c",
            "60",
            "-i",
            "0.05",
            "-W",
            "1",
            pod_ip(name, "dst"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.8)
    os.kill(state.pids["calico-node:node1"], signal.SIGKILL)
    os.kill(state.pids["calico-node:node2"], signal.SIGKILL)
    time.sleep(0.3)
    for node in ("node1", "node2"):
        cluster.start_node(state, node)
    cluster.wait_ready(state, lambda message: None)
    out, _ = ping.communicate(timeout=30)
    received = int(out.split(" received")[0].rsplit(" ", 1)[1])
    assert received >= 59, out
    assert json.loads(lab("status", "--name", name))["pods"]["default/dst"]["node"] == "node2"


def test_an_etcd_lab_keeps_working_with_one_member_killed(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2", "--datastore", "etcd")
    lab("pod", "add", "a", "--node", "node1", "--serve", "80", "--name", name)
    state = LabState.load(name)
    os.kill(state.pids["etcd:etcd1"], signal.SIGKILL)
    # CNI ADD, calicoctl and Felix's routing all go on through the other two members.
    lab("pod", "add", "b", "--node", "node2", "--serve", "80", "--name", name)
    assert "FAIL" not in lab("probe", "--name", name)
    nodes = lab("exec", "node1", "--name", name, "--", "calicoctl", "get", "nodes")
    assert "node1" in nodes and "node2" in nodes
    check = lab("exec", "node1", "--name", name, "--", "calicoctl", "ipam", "check")
    assert "found 0 problems" in check
