"""Felix's route calculation: datastore facts in, the kernel state this node should have out.

Pure. The dataplane managers compare the result with the kernel and apply the difference.

What a node gets (Calico's rules, reference routing-and-encap.md §1-§4):
* every local workload address: `<ip>/32 dev caliX scope link`;
* every block affine to this node: `blackhole <block>` (except, with the BIRD backend,
  blocks outside VXLAN pools: BIRD installs those, `proto bird`, as in Calico);
* every block affine to another node, by the pool's mode:
    VXLAN Always, or CrossSubnet with the node in another subnet:
        `<block> via <remote VTEP IP> dev vxlan.calico onlink`, plus a permanent neighbour
        (VTEP IP -> VTEP MAC) and an FDB entry (VTEP MAC -> node IP); until the remote
        VTEP is known, a node that still has an IPIP tunnel address keeps its IPIP route
        while this node's tunl0 is up (make before break when a pool moves from IPIP
        to VXLAN);
    IPIP Always, or CrossSubnet with the node in another subnet:
        `<block> via <node IP> dev tunl0 onlink`;
    CrossSubnet with the node in this node's subnet:
        `<block> via <node IP> dev <underlay>`;
    no encapsulation: left to BGP (BIRD learns and programs those routes);
* every address borrowed by another node from any block, routed the same way, as a /32;
* but a node without an address of its own (policy-only mode) routes nothing to other
  nodes: tunnels and same-subnet routes all start from it, and there the routing provider
  Calico runs beside carries that traffic.

Route protocols are Calico's: routes through `vxlan.calico` and workload routes carry the
device route protocol (boot, which `ip route` does not print); blackholes, same-subnet and
IPIP routes carry Felix's own protocol, 80.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyroute2.netlink.rtnl import rt_proto

from pycalico.netns import PROTO_FELIX, VXLAN_DEVICE

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IPIP_DEVICE = "tunl0"
# Calico's deviceRouteProtocol: workload and VXLAN routes (what `ip route add` uses too).
PROTO_BOOT = rt_proto["boot"]


@dataclass(frozen=True, slots=True, order=True)  # one per local endpoint: slots, ~50 B less each
class Route:
    dst: str
    kind: str = "unicast"  # or "blackhole"
    dev: str = ""
    via: str = ""
    onlink: bool = False
    proto: int = PROTO_FELIX
    scope: str = "universe"  # or "link"


@dataclass(frozen=True, order=True)
class Neighbour:
    ip: str
    mac: str
    dev: str = VXLAN_DEVICE


@dataclass(frozen=True, order=True)
class FdbEntry:
    mac: str
    dst: str  # the remote node's underlay address
    dev: str = VXLAN_DEVICE


@dataclass(frozen=True)
class NodeInfo:
    name: str
    address: ipaddress.IPv4Interface | None  # spec.bgp.ipv4Address, with its prefix
    vxlan_address: str = ""
    vxlan_mac: str = ""
    ipip_address: str = ""


@dataclass(frozen=True)
class PoolInfo:
    cidr: Network
    ipip_mode: str = "Never"
    vxlan_mode: str = "Never"


@dataclass(frozen=True, slots=True)  # one per local endpoint: slots, ~50 B less each
class Workload:
    address: str  # "10.244.1.5/32"
    interface: str


@dataclass
class RouteState:
    routes: set[Route] = field(default_factory=set)
    neighbours: set[Neighbour] = field(default_factory=set)
    fdb: set[FdbEntry] = field(default_factory=set)


def _pool_of(net: Network, pools: Sequence[PoolInfo]) -> PoolInfo | None:
    for pool in pools:
        if net.version == pool.cidr.version and net.subnet_of(pool.cidr):  # type: ignore[arg-type]
            return pool
    return None


def _same_subnet(local: NodeInfo, remote: NodeInfo) -> bool:
    """CrossSubnet's test: the remote node's IP inside this node's address prefix."""
    return (
        local.address is not None
        and remote.address is not None
        and remote.address.ip in local.address.network
    )


def calculate(
    node: str,
    nodes: Mapping[str, NodeInfo],
    pools: Sequence[PoolInfo],
    block_owners: Mapping[Network, str],
    borrowed: Mapping[str, str],
    workloads: Iterable[Workload],
    underlay_device: str,
    bird_blackholes: bool = False,
    tunl0_up: bool = False,
) -> RouteState:
    """The routes, neighbours and FDB entries `node` should have.

    `block_owners` maps each block to the node it is affine to; `borrowed` maps each
    address allocated by a node other than its block's owner to the allocating node.
    `tunl0_up`: this node can still send IPIP (what keeps a switching pool's old routes).
    """
    state = RouteState()
    local = nodes.get(node, NodeInfo(node, None))
    for wl in workloads:
        state.routes.add(Route(wl.address, dev=wl.interface, proto=PROTO_BOOT, scope="link"))
    vteps_used: set[str] = set()
    # Without encapsulation every other node's block is BGP's to route: in a large cluster
    # looking each one up on every apply was most of the route calculation.
    encapsulated = any(p.vxlan_mode != "Never" or p.ipip_mode != "Never" for p in pools)
    for block, owner in block_owners.items():
        if owner == node:
            pool = _pool_of(block, pools)
            if not bird_blackholes or (pool is not None and pool.vxlan_mode != "Never"):
                state.routes.add(Route(str(block), kind="blackhole"))
            continue
        if local.address is None or not encapsulated:
            continue  # policy-only (the routing provider's job), or BGP's
        vteps_used |= _remote(
            state, block, nodes.get(owner), local, pools, underlay_device, tunl0_up
        )
    for ip, owner in borrowed.items():
        if owner == node:
            continue  # our own workloads' routes come from their endpoints
        if local.address is None or not encapsulated:
            continue  # policy-only (the routing provider's job), or BGP's
        host = ipaddress.ip_network(ip)
        vteps_used |= _remote(
            state, host, nodes.get(owner), local, pools, underlay_device, tunl0_up
        )
    for name in vteps_used:
        remote = nodes[name]
        assert remote.address is not None
        state.neighbours.add(Neighbour(remote.vxlan_address, remote.vxlan_mac))
        state.fdb.add(FdbEntry(remote.vxlan_mac, str(remote.address.ip)))
    return state


def _remote(
    state: RouteState,
    net: Network,
    remote: NodeInfo | None,
    local: NodeInfo,
    pools: Sequence[PoolInfo],
    underlay_device: str,
    tunl0_up: bool,
) -> set[str]:
    """Add the route to `net` on node `remote`; return the VTEPs it needs."""
    pool = _pool_of(net, pools)
    if pool is None or remote is None or remote.address is None:
        return set()  # outside every pool, or a node we cannot reach yet
    if pool.vxlan_mode == "Never" and pool.ipip_mode == "Never":
        # BGP's job; checked first, as most of a large cluster's blocks end here on every
        # apply that recalculates routes (the address text below costs more than all else).
        return set()
    dst = str(net)
    same_subnet = _same_subnet(local, remote)
    node_ip = str(remote.address.ip)
    if pool.vxlan_mode != "Never":
        if pool.vxlan_mode == "CrossSubnet" and same_subnet:
            state.routes.add(Route(dst, dev=underlay_device, via=node_ip, onlink=True))
            return set()
        if not remote.vxlan_address or not remote.vxlan_mac:
            if remote.ipip_address and tunl0_up:
                # A pool just switched from IPIP: the node still decapsulates IPIP until
                # its VTEP is published, so keep the tunnel up rather than drop its pods.
                state.routes.add(Route(dst, dev=IPIP_DEVICE, via=node_ip, onlink=True))
            return set()  # the remote VTEP is not known yet
        state.routes.add(
            Route(dst, dev=VXLAN_DEVICE, via=remote.vxlan_address, onlink=True, proto=PROTO_BOOT)
        )
        return {remote.name}
    if pool.ipip_mode != "Never":
        if pool.ipip_mode == "CrossSubnet" and same_subnet:
            state.routes.add(Route(dst, dev=underlay_device, via=node_ip))
        else:
            state.routes.add(Route(dst, dev=IPIP_DEVICE, via=node_ip, onlink=True))
    return set()
