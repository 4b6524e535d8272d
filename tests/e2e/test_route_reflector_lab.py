"""A bigger lab built with `--route-reflectors`: two reflectors carry every block, no mesh."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable

import pytest

from pycalico.lab.namespaces import in_ns, ns_name
from pycalico.lab.state import LabState
from tests.support.lab_driver import lab, wait_for

pytestmark = pytest.mark.e2e

NODES = 12
REFLECTORS = ("node11", "node12")


def sessions(name: str) -> dict[str, tuple[int, int]]:
    """node -> (Established, all) BGP sessions, from `calico-lab status -o json`."""
    nodes = json.loads(lab("status", "--name", name, "-o", "json"))["nodes"]
    return {node: tuple(facts["bgp"] or (0, 0)) for node, facts in nodes.items()}


def unrouted(state: LabState) -> list[str]:
    """`node: pod` for every other node's pod a node has no BGP route to via that pod's node."""
    missing = []
    for node in state.nodes:
        shown = in_ns(ns_name(state.name, node), "ip", "-j", "route", "show", "proto", "bird")
        routes = [
            (ipaddress.ip_network(r["dst"]), r.get("gateway", ""))
            for r in json.loads(shown or "[]")
            if r["dst"] != "default"
        ]
        for key, pod in state.pods.items():
            if pod.node == node:
                continue
            via = state.node_ips[pod.node].split("/")[0]
            ip = ipaddress.ip_address(pod.ip)
            if not any(ip in dst and gateway == via for dst, gateway in routes):
                missing.append(f"{node}: {key}")
    return missing


# One pod per node, started at once on every node as kubelets start a DaemonSet's pods:
# their blocks are claimed concurrently, one per node.
DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere, labels: {app: everywhere}}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      containers: [{name: c, image: busybox}]
"""


def test_twelve_nodes_with_two_route_reflectors_converge_and_every_pod_reaches_every_other(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", str(NODES), "--encap", "none", "--route-reflectors", "2")
    lab("apply", "-f", "-", "--name", name, stdin=DAEMONSET)
    expected = {
        f"node{n}": (NODES - 1,) * 2 if f"node{n}" in REFLECTORS else (2, 2)
        for n in range(1, NODES + 1)
    }
    # A mesh would give every node 11 sessions: a client has only its two reflectors.
    wait_for(
        "two sessions on every client, one to every node on each reflector",
        lambda: sessions(name) == expected,
        timeout=60,
    )
    state = LabState.load(name)
    assert sorted(pod.node for pod in state.pods.values()) == sorted(expected)
    blocks = {ipaddress.ip_network(f"{pod.ip}/26", strict=False) for pod in state.pods.values()}
    assert len(blocks) == NODES, "each node claims a block of its own"
    wait_for("every node to route every other node's pod by BGP", lambda: not unrouted(state))
    # Each pod pings all the others (and the external host) at once, one process per pod.
    matrix = lab("probe", "--name", name, "--proto", "icmp")
    assert "FAIL" not in matrix, matrix
    assert matrix.count(" ok") == NODES * NODES, matrix
