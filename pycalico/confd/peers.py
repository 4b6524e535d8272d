"""Who a node peers with over BGP, and what the peerings are called (pure).

Calico's rules (reference bgp.md §3-§5): the node-to-node mesh pairs every node that has an
IPv4 address, except route reflectors, unless this node is itself a route reflector or
the mesh is off; of each pair only the side with the smaller IP string dials (the other
is passive). BIRD protocol names are `Mesh_`/`Global_`/`Node_` + the IP with its
separators turned into `_`; `calicoctl node status` reads them back.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_AS = 64512


@dataclass(frozen=True)
class BgpNode:
    name: str
    ipv4: str  # without prefix length; "" when the node has no IPv4 address
    asn: int | None = None  # None: the global AS
    rr_cluster_id: str = ""
    listen_port: int | None = None


@dataclass(frozen=True)
class Peering:
    protocol: str  # the BIRD protocol name, e.g. Mesh_192_168_56_12
    ip: str
    asn: int
    port: int | None = None
    passive: bool = False


def protocol_name(kind: str, ip: str, port: int | None = None) -> str:
    """`Mesh_192_168_56_12`, `Node_fd00__2`, `Global_10_0_0_1_port_1179`."""
    base = f"{kind}_{ip.replace('.', '_').replace(':', '_')}"
    return f"{base}_port_{port}" if port else base


def router_id(node: BgpNode, setting: str = "") -> str:
    """CALICO_ROUTER_ID: `hash` → from SHA-256 of the name, a literal → itself, else the IP."""
    if setting == "hash":
        octets = bytearray(hashlib.sha256(node.name.encode()).digest()[:4])
        if octets[0] > 223:  # keep it out of the multicast/reserved ranges
            octets[0] -= 32
        return str(ipaddress.IPv4Address(bytes(octets)))
    if setting:
        return setting
    return node.ipv4


def mesh(
    me: BgpNode,
    nodes: Mapping[str, BgpNode],
    mesh_enabled: bool = True,
    global_as: int = DEFAULT_AS,
    global_port: int | None = None,
) -> list[Peering]:
    """This node's node-to-node mesh sessions."""
    if me.rr_cluster_id or not mesh_enabled or not me.ipv4:
        return []
    peerings = []
    for other in sorted(nodes.values(), key=lambda n: n.name):
        if other.name == me.name or not other.ipv4 or other.rr_cluster_id:
            continue
        peerings.append(
            Peering(
                protocol_name("Mesh", other.ipv4),
                other.ipv4,
                other.asn if other.asn is not None else global_as,
                other.listen_port or global_port,
                # Only one side dials: the one whose address string sorts first.
                passive=other.ipv4 > me.ipv4,
            )
        )
    return peerings
