"""BGP in the lab: real BIRD 2 on every node, routes learned over BGP, no encapsulation."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from pycalico.confd.bird_process import BirdProcess
from pycalico.lab import cluster, namespaces
from pycalico.lab.state import LabState
from tests.support.lab_driver import (
    calicoctl,
    lab,
    node_ip,
    ping_stream,
    ping_three,
    pod_ip,
    received,
    wait_for,
)

pytestmark = pytest.mark.e2e

BGP_DEFAULT = (
    "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n"
)


def peers(name: str, node: str) -> dict[str, tuple[str, str]]:
    """`calicoctl node status` on `node`: peer address -> (peer type, info)."""
    out = calicoctl(name, "node", "status", node=node)
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[0-9a-f.:]+", cells[0]):
            rows[cells[0]] = (cells[1], cells[4])
    return rows


def established(name: str, node: str, kind: str, count: int) -> bool:
    found = peers(name, node)
    return sum(1 for t, info in found.values() if t == kind and info == "Established") == count


def test_no_encap_mesh_distributes_every_block_over_bgp(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "4", "--encap", "none")
    for n in range(1, 5):
        lab("pod", "add", f"p{n}", "--node", f"node{n}", "--name", name)
    for n in range(1, 5):
        wait_for(
            f"3 mesh peers on node{n}",
            lambda n=n: established(name, f"node{n}", "node-to-node mesh", 3),
        )
    matrix = lab("probe", "--name", name, "--proto", "icmp")
    assert "FAIL" not in matrix and matrix.count("ok") >= 12, matrix
    routes = lab("exec", "node1", "--name", name, "--", "ip", "route")
    for n in (2, 3, 4):
        block = re.search(
            rf"(\S+/26) via {re.escape(node_ip(name, f'node{n}'))} dev eth0 proto bird", routes
        )
        assert block, routes
    assert re.search(r"blackhole \S+/26 proto bird", routes), routes
    assert "vxlan.calico" not in routes and "tunl0" not in routes


def test_switching_to_route_reflectors_keeps_pods_talking(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "4", "--encap", "none")
    lab("pod", "add", "src", "--node", "node1", "--name", name)
    lab("pod", "add", "dst", "--node", "node4", "--name", name)
    wait_for("the mesh", lambda: established(name, "node1", "node-to-node mesh", 3))
    # The seeds' recipe: label two reflectors, give them cluster IDs, peer all() with them.
    for node, cluster_id in (("node2", "244.0.0.1"), ("node3", "244.0.0.2")):
        calicoctl(name, "label", "nodes", node, "route-reflector=true")
        calicoctl(
            name,
            "patch",
            "node",
            node,
            "-p",
            f'{{"spec":{{"bgp":{{"routeReflectorClusterID":"{cluster_id}"}}}}}}',
        )
    calicoctl(
        name,
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: BGPPeer\n"
        "metadata:\n  name: peer-with-route-reflectors\n"
        "spec:\n  nodeSelector: all()\n  peerSelector: route-reflector == 'true'\n",
    )
    wait_for(
        "node1's two reflector sessions", lambda: established(name, "node1", "node specific", 2)
    )
    ping = ping_stream(name, "src", pod_ip(name, "dst"), 120, 0.05)
    time.sleep(1)
    calicoctl(
        name,
        "apply",
        "-f",
        "-",
        stdin=BGP_DEFAULT + "spec:\n  nodeToNodeMeshEnabled: false\n",
    )
    wait_for("the mesh to go", lambda: established(name, "node1", "node-to-node mesh", 0))
    got, out = received(ping)
    assert got >= 120 - 20, out  # at most one second of a 20 packet/s stream lost
    for node in ("node1", "node4"):
        kinds = {t for t, _ in peers(name, node).values()}
        assert kinds == {"node specific"}, peers(name, node)
    reflector = peers(name, "node2")
    assert set(reflector) == {node_ip(name, n) for n in ("node1", "node3", "node4")}
    ping_three(name, "src", pod_ip(name, "dst"))


def test_tor_router_learns_every_block_and_routes_outside_traffic_to_pods(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "3", "--topology", "tor", "--encap", "none")
    for n in (1, 2, 3):
        lab("pod", "add", f"p{n}", "--node", f"node{n}", "--name", name)
    tor_ip = "192.168.56.1"
    for n in (1, 2, 3):
        wait_for(
            f"node{n}'s ToR session",
            lambda n=n: peers(name, f"node{n}").get(tor_ip, ("", ""))[1] == "Established",
        )
        assert peers(name, f"node{n}")[tor_ip][0] == "global"
    router = namespaces.ns_name(name, "router")

    def tor_routes() -> str:
        return subprocess.run(
            ["ip", "netns", "exec", router, "ip", "route"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    for n in (1, 2, 3):
        ip = node_ip(name, f"node{n}")
        wait_for(
            f"node{n}'s block on the ToR",
            lambda ip=ip: f"via {ip} dev eth0 proto bird" in tor_routes(),
        )
    # The host behind the ToR (the lab's "internet") reaches every pod, unencapsulated.
    ext = namespaces.ns_name(name, "ext")
    for n in (1, 2, 3):
        subprocess.run(
            ["ip", "netns", "exec", ext, "ping", "-c2", "-i0.2", "-W2", pod_ip(name, f"p{n}")],
            check=True,
        )
    # Without a mesh, nodes learn each other's blocks from the ToR, next hop the owner.
    assert not any(t == "node-to-node mesh" for t, _ in peers(name, "node1").values())
    routes = lab("exec", "node1", "--name", name, "--", "ip", "route")
    assert f"via {node_ip(name, 'node2')} dev eth0 proto bird" in routes, routes
    ping_three(name, "p1", pod_ip(name, "p3"))


def test_a_dead_node_is_withdrawn_after_graceful_restart_and_comes_back(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "2", "--encap", "none")
    calicoctl(name, "apply", "-f", "-", stdin=BGP_DEFAULT + "spec:\n  nodeMeshMaxRestartTime: 5s\n")
    lab("pod", "add", "a", "--node", "node1", "--name", name)
    lab("pod", "add", "b", "--node", "node2", "--name", name)
    wait_for("the mesh", lambda: established(name, "node1", "node-to-node mesh", 1))
    node2 = node_ip(name, "node2")

    def learned() -> bool:
        routes = lab("exec", "node1", "--name", name, "--", "ip", "route")
        return f"via {node2} dev eth0 proto bird" in routes

    # Both sides must have the 5 s restart time before one of them dies.
    state = LabState.load(name)
    with open(state.path("nodes", "node2", "confd", "bird.cfg"), encoding="utf-8") as f:
        assert "graceful restart time 5;" in f.read()
    wait_for("node2's block on node1", learned)
    bird = BirdProcess("", state.path("nodes", "node2", "run")).pid()
    assert bird is not None
    os.kill(state.pids["calico-node:node2"], signal.SIGKILL)
    os.kill(bird, signal.SIGKILL)
    wait_for("the session down", lambda: peers(name, "node1")[node2][1] != "Established")
    assert learned()  # graceful restart: kept while node2 may come back
    wait_for("node2's routes withdrawn", lambda: not learned(), timeout=20)
    cluster.start_node(state, "node2")
    cluster.wait_ready(state, lambda message: None)
    wait_for("the session back", lambda: established(name, "node1", "node-to-node mesh", 1))
    wait_for("node2's block back on node1", learned)
    ping_three(name, "a", pod_ip(name, "b"))


def test_dual_stack_lab_carries_ipv6_pod_routes_over_bgp_beside_vxlan_ipv4(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "3", "--ipv6")
    for n in (1, 2, 3):
        lab("pod", "add", f"p{n}", "--node", f"node{n}", "--name", name)
    state = LabState.load(name)
    for n in (1, 2, 3):
        wait_for(
            f"node{n}'s v6 mesh", lambda n=n: established(name, f"node{n}", "node-to-node mesh", 4)
        )
    routes6 = lab("exec", "node1", "--name", name, "--", "ip", "-6", "route")
    assert routes6.count("dev eth0 proto bird") == 2, routes6  # node2's and node3's v6 blocks
    routes4 = lab("exec", "node1", "--name", name, "--", "ip", "route")
    assert routes4.count("dev vxlan.calico onlink") == 2, routes4  # v4 stays on VXLAN
    for n in (2, 3):
        ip6 = state.pods[f"default/p{n}"].ip6
        assert ip6.startswith("fd00:10:244:")
        lab("exec", "default/p1", "--name", name, "--", "ping", "-6", "-c2", "-i0.2", "-W2", ip6)
    ping_three(name, "p1", pod_ip(name, "p3"))
