"""What the node's kernel should hold, as one typed value (pure).

A snapshot of the datastore, the settings resolved for this apply and the facts the
kernel told about this host's links go in; `Desired` comes out: the devices, routes,
neighbours and FDB entries (`Routing`), the nftables ruleset (policy, natOutgoing,
NOTRACK), the pod MTU, and the endpoints and workload addresses under policy. The
dataplane managers each take their part of it and make the kernel match.

The routing part is remembered: while its inputs are equal the same `Routing` object
comes back, which is how a policy-only change (a label, a policy) lets the device and
route managers skip their work.

A node without an IPv4 address (Calico's policy-only mode, CALICO_NETWORKING_BACKEND=none,
where another routing provider carries traffic between nodes, or a single host) still gets
its policy, its workloads' routes, its blocks' blackholes and natOutgoing. What starts from
the node's address is left out, as Calico's Felix leaves it: no VXLAN device (a VTEP is the
node's address), no IPIP device and no routes to other nodes' blocks; `Routing.warnings`
says why while a pool asks for a tunnel.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycalico.felix.calc import mtu, routes
from pycalico.felix.calc.routes import IPIP_DEVICE, VXLAN_DEVICE
from pycalico.felix.calc.settings import Settings
from pycalico.felix.calc.snapshot import Snapshot
from pycalico.felix.calc.staged_tiers import with_staged_tiers
from pycalico.felix.rules import host_endpoints, nat
from pycalico.felix.rules.host_endpoints import HostChains, HostConfig
from pycalico.felix.rules.policy import PolicyRenderer
from pycalico.felix.rules.table import Ruleset
from pycalico.policy import calc as policy_calc

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DesiredStateError(RuntimeError):
    """The inputs do not yet say what the node should have (e.g. it has no address)."""


@dataclass(frozen=True)
class HostLinks:
    """What the kernel says about this host's links: the input the datastore cannot give."""

    links: tuple[mtu.Link, ...]
    addresses: tuple[tuple[str, str], ...]  # (IPv4 or IPv6 address, the interface holding it)

    def interfaces(self) -> dict[str, frozenset[str]]:
        """Every link with its addresses: what host endpoints are matched against."""
        found: dict[str, set[str]] = {link.name: set() for link in self.links}
        for address, name in self.addresses:
            found.setdefault(name, set()).add(address)
        return {name: frozenset(addresses) for name, addresses in found.items()}


@dataclass(frozen=True)
class VxlanSpec:
    vni: int
    port: int
    local_ip: str  # this node's underlay address
    parent: str  # the interface holding it
    mac: str
    mtu: int
    address: str  # this node's VXLAN tunnel address ("" until IPAM gave one)


@dataclass(frozen=True)
class IpipSpec:
    mtu: int
    address: str  # the node's IPIP tunnel address ("" until IPAM gave one)


@dataclass(frozen=True)
class Forwarding:
    ipv4: bool
    ipv6: bool


@dataclass(frozen=True)
class Routing:
    """The devices and routes; compared by identity, so built only by `Calculator`."""

    underlay: str  # the interface holding this node's address ("" for a node without one)
    forwarding: Forwarding | None  # None: ipForwarding Disabled, left as it is
    vxlan: VxlanSpec | None  # None: no VXLAN pool, or no tunnel address yet: left alone
    ipip: IpipSpec | None  # None: no IPIP pool, so tunl0 (if any) holds no address
    state: routes.RouteState
    vxlan_port: int | None  # with VXLAN on, the port its NOTRACK rules name
    pod_mtu: int
    # What a pool asks for that this node cannot have (a tunnel without a node address).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Desired:
    revision: int
    settings: Settings
    routing: Routing
    ruleset: Ruleset
    endpoints: frozenset[str]  # interfaces whose policy is in the ruleset
    workload_addresses: frozenset[Network]  # this node's endpoints' addresses
    # What policy asks for that Calico ignores (doNotTrack on an all-interfaces endpoint).
    policy_warnings: tuple[str, ...] = ()


def routing_inputs(snap: Snapshot, settings: Settings) -> tuple[Any, ...]:
    """Everything of the datastore and settings that `Routing` depends on."""
    return (
        snap.nodes,
        snap.pools,
        snap.block_owners,
        snap.borrowed,
        snap.workloads,
        settings.mtu_iface_pattern,
        settings.vxlan_port,
        settings.vxlan_vni,
        settings.vxlan_mtu,
        settings.ipip_mtu,
        settings.ip_forwarding,
        settings.ipv6_support,
    )


def underlay(address: ipaddress.IPv4Interface, host: HostLinks) -> str:
    for ip, name in host.addresses:
        if ip == str(address.ip):
            return name
    raise DesiredStateError(f"no interface holds this node's address {address.ip}")


def _tunnels_skipped(node: str, vxlan_on: bool, ipip_on: bool) -> tuple[str, ...]:
    skipped = []
    if vxlan_on:
        skipped.append((VXLAN_DEVICE, "vxlanMode"))
    if ipip_on:
        skipped.append((IPIP_DEVICE, "ipipMode"))
    return tuple(
        f"Node {node} has no IPv4 address (policy-only mode): no {device} although a pool "
        f"has {mode} on, since a tunnel starts from the node's address; traffic to other "
        "nodes' pods is left to the routing provider"
        for device, mode in skipped
    )


def routing(
    node: str, snap: Snapshot, settings: Settings, host: HostLinks, bird_blackholes: bool
) -> Routing:
    local = snap.nodes.get(node) or routes.NodeInfo(node, None)
    device = underlay(local.address, host) if local.address is not None else ""
    host_mtu = mtu.host_mtu(host.links, settings.mtu_iface_pattern)
    v4_pools = [p for p in snap.pools if p.cidr.version == 4]
    vxlan_on = any(p.vxlan_mode != "Never" for p in v4_pools)
    ipip_on = any(p.ipip_mode != "Never" for p in v4_pools)
    warnings: tuple[str, ...] = ()
    if local.address is None:
        warnings = _tunnels_skipped(node, vxlan_on, ipip_on)
        vxlan_on = ipip_on = False
    enabled: dict[str, int] = {}
    if vxlan_on:
        enabled["vxlan"] = settings.vxlan_mtu
    if ipip_on:
        enabled["ipip"] = settings.ipip_mtu
    vxlan = None
    if vxlan_on and local.address is not None and local.vxlan_address:
        vxlan = VxlanSpec(
            vni=settings.vxlan_vni,
            port=settings.vxlan_port,
            local_ip=str(local.address.ip),
            parent=device,
            mac=local.vxlan_mac,
            mtu=mtu.tunnel_mtu(host_mtu, "vxlan", settings.vxlan_mtu),
            address=local.vxlan_address,
        )
    ipip = (
        IpipSpec(mtu.tunnel_mtu(host_mtu, "ipip", settings.ipip_mtu), local.ipip_address)
        if ipip_on
        else None
    )
    tunl0 = next((link for link in host.links if link.name == routes.IPIP_DEVICE), None)
    state = routes.calculate(
        node,
        snap.nodes,
        snap.pools,
        snap.block_owners,
        snap.borrowed,
        snap.workloads,
        device,
        bird_blackholes,
        tunl0_up=ipip_on or (tunl0 is not None and tunl0.up),
    )
    forwarding = (
        Forwarding(ipv4=True, ipv6=settings.ipv6_support)
        if settings.ip_forwarding != "Disabled"
        else None
    )
    return Routing(
        underlay=device,
        forwarding=forwarding,
        vxlan=vxlan,
        ipip=ipip,
        state=state,
        vxlan_port=settings.vxlan_port if vxlan_on else None,
        pod_mtu=mtu.pod_mtu(host_mtu, enabled),
        warnings=warnings,
    )


def workload_addresses(node: str, endpoints: Sequence[Any]) -> frozenset[Network]:
    return frozenset(net for ep in endpoints if ep.node == node for net in ep.addresses)


@dataclass
class Calculator:
    """Felix's calculation, kept across applies: each part is redone only for what changed
    (policy by the policy calculator's own bookkeeping, rendering by the renderer's)."""

    node: str
    # With the BIRD backend, BIRD installs the blackholes of blocks outside VXLAN pools.
    bird_blackholes: bool = False
    policy: policy_calc.Calculator = field(init=False)
    renderer: PolicyRenderer = field(default_factory=PolicyRenderer, init=False)
    host_chains: HostChains = field(default_factory=HostChains, init=False)
    _routing: tuple[tuple[Any, ...], HostLinks, Routing] | None = field(default=None, init=False)
    _node_ips_from: tuple[tuple[routes.NodeInfo, ...], frozenset[str]] = field(
        default=((), frozenset()), init=False
    )
    # The policy state of the last calculation (flow logs name their traces from it).
    last_policy: policy_calc.PolicyState = field(
        default_factory=policy_calc.PolicyState, init=False
    )

    def __post_init__(self) -> None:
        self.policy = policy_calc.Calculator(self.node)

    def _node_ips(self, nodes: Mapping[str, routes.NodeInfo]) -> frozenset[str]:
        """Every node's address as text, made again only when a node changed (the node
        infos are memoized per stored Node: comparing them is mostly identity checks)."""
        infos = tuple(nodes.values())
        if self._node_ips_from[0] != infos:
            ips = frozenset(str(n.address.ip) for n in infos if n.address)
            self._node_ips_from = (infos, ips)
        return self._node_ips_from[1]

    def calculate(self, snap: Snapshot, settings: Settings, host: HostLinks) -> Desired:
        inputs = routing_inputs(snap, settings)
        last = self._routing
        if last is not None and last[1] == host and last[0] == inputs:
            wanted = last[2]
        else:
            wanted = routing(self.node, snap, settings, host, self.bird_blackholes)
            self._routing = (inputs, host, wanted)
        policy = self.policy.calculate(snap.policy, host.interfaces())
        staged = snap.policy.staged_policies
        if settings.flow_logs_enabled and staged:
            local = [ep for ep in snap.policy.endpoints if ep.node == self.node]
            policy = with_staged_tiers(policy, local, staged, snap.policy.tiers)
        self.last_policy = policy
        ruleset = self.renderer.render(
            policy, settings.default_endpoint_to_host_action, settings.flow_logs_enabled
        )
        nat.add_to(ruleset, snap.nat_pools, wanted.vxlan_port)
        warnings = host_endpoints.add_to(
            ruleset,
            policy,
            self.renderer.chain_lines,
            HostConfig(
                settings.failsafe_inbound_host_ports,
                settings.failsafe_outbound_host_ports,
                self._node_ips(snap.nodes),
                wanted.vxlan_port,
                wanted.ipip is not None,
            ),
            self.host_chains,
        )
        return Desired(
            revision=snap.revision,
            settings=settings,
            routing=wanted,
            ruleset=ruleset,
            endpoints=frozenset(policy.endpoints),
            workload_addresses=workload_addresses(self.node, snap.policy.endpoints),
            policy_warnings=warnings,
        )
