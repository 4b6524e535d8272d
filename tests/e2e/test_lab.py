"""The lab end to end: real calico-node processes, real packets, all inside namespaces."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable

import pytest

from pycalico.lab import cluster, namespaces
from pycalico.lab.state import LabState
from tests.support.lab_driver import (
    Capture,
    calicoctl,
    lab,
    ping_stream,
    ping_three,
    pod_ip,
    received,
)

pytestmark = pytest.mark.e2e


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
    calicoctl(
        name,
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
    net = namespaces.ns_name(name, "net")
    with Capture(net, "n2") as same:
        ping_three(name, "p1", pod_ip(name, "p2"))
    assert same.vxlan == 0 and same.plain_icmp >= 6
    with Capture(namespaces.ns_name(name, "router"), "eth1") as cross:
        ping_three(name, "p1", pod_ip(name, "p3"))
    assert cross.vxlan >= 6 and cross.plain_icmp == 0


def test_killing_calico_node_does_not_disturb_running_traffic(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2")
    lab("pod", "add", "src", "--node", "node1", "--name", name)
    lab("pod", "add", "dst", "--node", "node2", "--name", name)
    state = LabState.load(name)
    ping = ping_stream(name, "src", pod_ip(name, "dst"), 60, 0.05)
    time.sleep(0.8)
    os.kill(state.pids["calico-node:node1"], signal.SIGKILL)
    os.kill(state.pids["calico-node:node2"], signal.SIGKILL)
    time.sleep(0.3)
    for node in ("node1", "node2"):
        cluster.start_node(state, node)
    cluster.wait_ready(state, lambda message: None)
    got, out = received(ping)
    assert got >= 59, out
    status = json.loads(lab("status", "--name", name, "-o", "json"))
    assert status["pods"]["default/dst"]["node"] == "node2"


def test_an_etcd_lab_keeps_working_with_one_member_killed(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2", "--datastore", "etcd")
    lab("pod", "add", "a", "--node", "node1", "--serve", "80", "--name", name)
    state = LabState.load(name)
    os.kill(state.pids["etcd:etcd1"], signal.SIGKILL)
    # CNI ADD, calicoctl and Felix's routing all go on through the other two members.
    lab("pod", "add", "b", "--node", "node2", "--serve", "80", "--name", name)
    assert "FAIL" not in lab("probe", "--name", name)
    nodes = calicoctl(name, "get", "nodes")
    assert "node1" in nodes and "node2" in nodes
    check = calicoctl(name, "ipam", "check")
    assert "found 0 problems" in check
