"""The `tor` topology: the lab router is a top-of-rack BGP router (its own BIRD, AS 65001).

Every node peers with it through one global BGPPeer (peerIP + asNumber) and the
node-to-node mesh is off, as Calico's ToR designs have it: each node advertises its own
blocks to the ToR, which re-advertises them to the others (next hop kept: they share the
subnet; the nodes accept their own AS once in a path) and routes "outside" traffic (the
external host behind it) straight to pods, without encapsulation. With the mesh on, every
node would also re-advertise every other node's blocks to the ToR with itself as next hop.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess

from pycalico.lab.state import LabError, LabState

TOR_AS = 65001
PEER_NAME = "tor"


def address(state: LabState) -> str:
    """The router's address on the nodes' subnet."""
    first = next(iter(state.node_ips.values()))
    return str(ipaddress.ip_interface(first).network.network_address + 1)


def config(state: LabState, node_as: int) -> str:
    me = address(state)
    lines = [
        "# The lab's top-of-rack router (calico-lab --topology tor).",
        f"router id {me};",
        "log stderr all;",
        "timeformat protocol iso short;",
        "protocol device { scan time 2; }",
        "protocol kernel {",
        "  ipv4 { import none; export all; };",
        "  metric 0;",
        "  scan time 2;",
        "}",
    ]
    for node, cidr in sorted(state.node_ips.items()):
        ip = ipaddress.ip_interface(cidr).ip
        lines += [
            f"protocol bgp {node} {{",
            f"  local {me} as {TOR_AS};",
            f"  neighbor {ip} as {node_as};",
            "  ipv4 { import all; export all; };",
            "}",
        ]
    return "\n".join(lines) + "\n"


def resources_yaml(state: LabState) -> str:
    return (
        "apiVersion: projectcalico.org/v3\n"
        "kind: BGPPeer\n"
        f"metadata:\n  name: {PEER_NAME}\n"
        f"spec:\n  peerIP: {address(state)}\n  asNumber: {TOR_AS}\n"
        # Every node is AS 64512: routes from the other nodes carry it in their AS path.
        "  numAllowedLocalASNumbers: 1\n"
        "---\n"
        "apiVersion: projectcalico.org/v3\n"
        "kind: BGPConfiguration\n"
        "metadata:\n  name: default\n"
        "spec:\n  nodeToNodeMeshEnabled: false\n"
    )


def start(state: LabState, router_ns: str, node_as: int) -> int:
    """Start the router's BIRD; its pid."""
    os.makedirs(state.path("tor"), exist_ok=True)
    path = state.path("tor", "bird.cfg")
    with open(path, "w", encoding="utf-8") as f:
        f.write(config(state, node_as))
    check = subprocess.run(["bird", "-p", "-c", path], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise LabError(f"the ToR's BIRD config is refused: {check.stderr.strip()}")
    with open(state.path("tor", "bird.log"), "ab") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                router_ns,
                "bird",
                "-f",
                "-c",
                path,
                "-s",
                state.path("tor", "bird.ctl"),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid
