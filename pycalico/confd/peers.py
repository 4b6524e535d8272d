"""Who a node peers with over BGP, and what the peerings are called (pure).

Calico's rules (reference bgp.md §3-§5):
* the node-to-node mesh pairs every node that has an address of the family, except route
  reflectors, unless this node is itself a route reflector or the mesh is off; of each
  pair only the side with the greater IP string dials (the other is passive);
* a BGPPeer with neither `node` nor `nodeSelector` is global (every node peers); one with
  either applies to the nodes it names; its far side is `peerIP` or every node its
  `peerSelector` matches;
* unless `reversePeering: Manual`, the far side peers back: a node chosen by a peer's
  `peerSelector` (or whose IP and AS are its `peerIP` and `asNumber`) peers with that
  peer's local nodes;
* a route reflector treats an iBGP peer with another cluster ID as its client.
BIRD protocol names are `Mesh_`/`Global_`/`Node_` + the IP with its separators turned
into `_`; `calicoctl node status` reads them back.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pycalico.api.bgp import peer_address
from pycalico.selector import parse

DEFAULT_AS = 64512


@dataclass(frozen=True)
class BgpNode:
    name: str
    ipv4: str  # without prefix length; "" when the node has no IPv4 address
    asn: int | None = None  # None: the global AS
    rr_cluster_id: str = ""
    listen_port: int | None = None
    ipv6: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def address(self, family: int) -> str:
        return self.ipv4 if family == 4 else self.ipv6


@dataclass(frozen=True)
class PeerSpec:
    """The parts of a BGPPeer confd uses (durations already in seconds)."""

    name: str
    node: str = ""
    node_selector: str = ""
    peer_ip: str = ""  # IP, IP:port or [IPv6]:port
    asn: int | None = None
    peer_selector: str = ""
    keep_original_next_hop: bool = False
    next_hop_mode: str = ""  # "", Auto, Self, Keep
    source_address: str = "UseNodeIP"
    restart_time: int | None = None
    allow_local_as: int = 0
    ttl_security: int = 0
    reverse: bool = True


@dataclass(frozen=True)
class Peering:
    protocol: str  # the BIRD protocol name, e.g. Mesh_192_168_56_12
    ip: str
    asn: int
    port: int | None = None
    passive: bool = False
    rr_cluster_id: str = ""  # the far side's, when it is a Calico node
    rr_client: bool = False
    next_hop: str = ""  # "", "self" or "keep"
    source_address: bool = True
    restart_time: int | None = None
    allow_local_as: int = 0
    ttl_security: int = 0

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.ip).version


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


def split_peer_ip(value: str) -> tuple[str, int | None]:
    """`10.0.0.1` / `10.0.0.1:1179` / `[fd00::1]:1179` / `fd00::1` → (ip, port)."""
    address, port = peer_address(value)
    return str(address), port


def _as_of(node: BgpNode, global_as: int) -> int:
    return node.asn if node.asn is not None else global_as


def mesh(
    me: BgpNode,
    nodes: Mapping[str, BgpNode],
    mesh_enabled: bool = True,
    global_as: int = DEFAULT_AS,
    global_port: int | None = None,
    family: int = 4,
    restart_time: int | None = None,
) -> list[Peering]:
    """This node's node-to-node mesh sessions for one address family."""
    mine = me.address(family)
    if me.rr_cluster_id or not mesh_enabled or not mine:
        return []
    peerings = []
    for other in sorted(nodes.values(), key=lambda n: n.name):
        theirs = other.address(family)
        if other.name == me.name or not theirs or other.rr_cluster_id:
            continue
        peerings.append(
            Peering(
                protocol_name("Mesh", theirs),
                theirs,
                _as_of(other, global_as),
                other.listen_port or global_port,
                # Only one side dials: the one whose address string sorts last.
                passive=theirs > mine,
                restart_time=restart_time,
            )
        )
    return peerings


@dataclass(frozen=True)
class _Target:
    ip: str
    port: int | None
    asn: int
    node: BgpNode | None  # the Calico node at that address, if it is one


def _selects(selector: str, node: BgpNode) -> bool:
    return parse(selector).evaluate(node.labels)


def _is_local(peer: PeerSpec, node: BgpNode) -> bool:
    """Whether `peer` applies on `node` (global peers apply everywhere)."""
    if peer.node:
        return peer.node == node.name
    if peer.node_selector:
        return _selects(peer.node_selector, node)
    return True


def _node_at(ip: str, nodes: Sequence[BgpNode]) -> BgpNode | None:
    for node in nodes:
        if ip in (node.ipv4, node.ipv6):
            return node
    return None


def _targets(peer: PeerSpec, nodes: Sequence[BgpNode], global_as: int) -> list[_Target]:
    """The far side(s) of a BGPPeer."""
    if peer.peer_selector:
        return [
            _Target(address, n.listen_port, _as_of(n, global_as), n)
            for n in nodes
            if _selects(peer.peer_selector, n)
            for address in (n.ipv4, n.ipv6)
            if address
        ]
    ip, port = split_peer_ip(peer.peer_ip)
    node = _node_at(ip, nodes)
    if port is None and node is not None:
        port = node.listen_port
    return [_Target(ip, port, peer.asn if peer.asn is not None else global_as, node)]


def _next_hop(peer: PeerSpec) -> str:
    if peer.next_hop_mode in ("Self", "Keep"):
        return peer.next_hop_mode.lower()
    return "keep" if peer.keep_original_next_hop else ""


def _peering(kind: str, me: BgpNode, target: _Target, my_as: int, peer: PeerSpec | None) -> Peering:
    cluster = target.node.rr_cluster_id if target.node else ""
    mine = me.address(ipaddress.ip_address(target.ip).version)
    return Peering(
        protocol_name(kind, target.ip, target.port),
        target.ip,
        target.asn,
        target.port,
        # Between two Calico nodes only one side dials, as in the mesh.
        passive=kind == "Global" and target.node is not None and target.ip > mine,
        rr_cluster_id=cluster,
        rr_client=bool(me.rr_cluster_id) and target.asn == my_as and cluster != me.rr_cluster_id,
        next_hop=_next_hop(peer) if peer else "",
        source_address=peer.source_address != "None" if peer else True,
        restart_time=peer.restart_time if peer else None,
        allow_local_as=peer.allow_local_as if peer else 0,
        ttl_security=peer.ttl_security if peer else 0,
    )


def explicit(
    me: BgpNode,
    nodes: Mapping[str, BgpNode],
    peers: Sequence[PeerSpec],
    global_as: int = DEFAULT_AS,
) -> tuple[list[Peering], list[Peering]]:
    """This node's (global, node-specific) peerings from the BGPPeer resources."""
    everyone = sorted(nodes.values(), key=lambda n: n.name)
    my_as = _as_of(me, global_as)
    global_: dict[tuple[str, int | None], Peering] = {}
    for peer in sorted(peers, key=lambda p: p.name):
        if peer.node or peer.node_selector:
            continue
        for target in _targets(peer, everyone, global_as):
            if _usable(me, target):
                peering = _peering("Global", me, target, my_as, peer)
                global_.setdefault((target.ip, target.port), peering)
    specific: dict[tuple[str, int | None], Peering] = {}

    def add(target: _Target, peer: PeerSpec | None) -> None:
        key = (target.ip, target.port)
        if _usable(me, target) and key not in global_ and key not in specific:
            specific[key] = _peering("Node", me, target, my_as, peer)

    for peer in sorted(peers, key=lambda p: p.name):
        if (peer.node or peer.node_selector) and _is_local(peer, me):
            for target in _targets(peer, everyone, global_as):
                add(target, peer)
    for peer in sorted(peers, key=lambda p: p.name):
        if peer.reverse and _is_target(peer, me, global_as):
            for local in everyone:
                if local.name != me.name and _is_local(peer, local):
                    for address in (local.ipv4, local.ipv6):
                        if address:
                            asn = _as_of(local, global_as)
                            add(_Target(address, local.listen_port, asn, local), None)
    return list(global_.values()), list(specific.values())


def _usable(me: BgpNode, target: _Target) -> bool:
    """Not ourselves, and we have an address of the target's family to speak from."""
    if target.ip in (me.ipv4, me.ipv6):
        return False
    return bool(me.address(ipaddress.ip_address(target.ip).version))


def _is_target(peer: PeerSpec, me: BgpNode, global_as: int) -> bool:
    """Whether this node is the far side of `peer` (so it peers back)."""
    if peer.peer_selector:
        return _selects(peer.peer_selector, me)
    ip, _ = split_peer_ip(peer.peer_ip)
    return ip in (me.ipv4, me.ipv6) and peer.asn == _as_of(me, global_as)
