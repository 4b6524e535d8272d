"""`calico-lab up --route-reflectors K`: the seeds' recipe for bigger clusters (pure).

The last K nodes become BGP route reflectors for every other node: each is labelled
`route-reflector=true` and gets its own `routeReflectorClusterID` (244.0.0.1, 244.0.0.2,
... as the seeds number them), one BGPPeer peers all() with `route-reflector == 'true'`,
and the node-to-node mesh is off. A full mesh costs every node N-1 sessions; this costs a
client two and a reflector N-1. The resources are written before any calico-node starts,
the reflectors' Nodes with the addresses the lab gives them (calico-node keeps an existing
Node's labels and cluster ID), so no node ever renders a mesh it would then tear down.
"""

from __future__ import annotations

import ipaddress

from pycalico.lab.state import LabError

LABEL = "route-reflector"
PEER_NAME = "peer-with-route-reflectors"
FIRST_CLUSTER_ID = ipaddress.IPv4Address("244.0.0.1")


def check(count: int, nodes: int, topology: str, bird: bool) -> None:
    """A LabError when a lab so built cannot have `count` reflectors."""
    if count == 0:
        return
    if count < 0 or count >= nodes:
        raise LabError(
            f"--route-reflectors {count}: must be 0-{nodes - 1} for {nodes} nodes "
            "(at least one node is a client)"
        )
    if topology == "tor":
        raise LabError("--route-reflectors: with --topology tor every node peers with the ToR")
    if not bird:
        raise LabError(
            "--route-reflectors needs BGP, which a VXLAN lab does not run: "
            "use --encap none or ipip (or --ipv6)"
        )


def reflectors(nodes: list[str], count: int) -> list[str]:
    return nodes[len(nodes) - count :] if count else []


def cluster_id(index: int) -> str:
    return str(FIRST_CLUSTER_ID + index)


def resources_yaml(nodes: list[str], count: int, node_ips: dict[str, str]) -> str:
    """The Nodes, BGPPeer and BGPConfiguration, for `calicoctl apply -f -`."""
    docs = [
        "apiVersion: projectcalico.org/v3\n"
        "kind: Node\n"
        f"metadata:\n  name: {node}\n  labels:\n    {LABEL}: 'true'\n"
        f"spec:\n  bgp:\n    ipv4Address: {node_ips[node]}\n"
        f"    routeReflectorClusterID: {cluster_id(i)}\n"
        for i, node in enumerate(reflectors(nodes, count))
    ]
    docs.append(
        "apiVersion: projectcalico.org/v3\n"
        "kind: BGPPeer\n"
        f"metadata:\n  name: {PEER_NAME}\n"
        f"spec:\n  nodeSelector: all()\n  peerSelector: {LABEL} == 'true'\n"
    )
    docs.append(
        "apiVersion: projectcalico.org/v3\n"
        "kind: BGPConfiguration\n"
        "metadata:\n  name: default\n"
        "spec:\n  nodeToNodeMeshEnabled: false\n"
    )
    return "---\n".join(docs)
