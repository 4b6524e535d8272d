"""From datastore objects to the inputs of Felix's calculations (pure).

Felix reads Nodes, IPPools, this node's WorkloadEndpoints and IPAM's blocks and
affinities; these functions turn them into the plain values `routes` and `rules.nat` take.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from pycalico.felix.calc.routes import NodeInfo, PoolInfo, Workload
from pycalico.felix.calc.vxlan_mac import vtep_mac
from pycalico.felix.rules.nat import NatPool
from pycalico.ipam import keys
from pycalico.ipam.block import Block

Resource = Mapping[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def node_info(node: Resource) -> NodeInfo:
    spec = node["spec"]
    name = node["metadata"]["name"]
    address = spec.get("bgp", {}).get("ipv4Address")
    return NodeInfo(
        name,
        ipaddress.IPv4Interface(address) if address else None,
        spec.get("ipv4VXLANTunnelAddr", ""),
        # Calico does not write the derived MAC back, so every node derives it the same way.
        vtep_mac(name, spec.get("vxlanTunnelMACAddr", "")),
        spec.get("bgp", {}).get("ipv4IPIPTunnelAddr", ""),
    )


def pool_info(pool: Resource) -> PoolInfo:
    spec = pool["spec"]
    return PoolInfo(
        ipaddress.ip_network(spec["cidr"]),
        spec.get("ipipMode", "Never"),
        spec.get("vxlanMode", "Never"),
    )


def nat_pool(pool: Resource) -> NatPool:
    spec = pool["spec"]
    return NatPool(spec["cidr"], bool(spec.get("natOutgoing")), bool(spec.get("disabled")))


def endpoint_workloads(wep: Resource) -> tuple[str, tuple[Workload, ...]]:
    """The endpoint's node and the IPv4 workload routes it needs there."""
    spec = wep["spec"]
    if not spec.get("interfaceName"):
        return spec.get("node", ""), ()
    return spec.get("node", ""), tuple(
        Workload(net, spec["interfaceName"])
        for net in spec.get("ipNetworks", [])
        if ipaddress.ip_network(net).version == 4
    )


def affinity_owner(key: str, value: str) -> tuple[Network, str] | None:
    """(block, node) of one key under /calico/ipam/v2/host/, if a confirmed IPv4 affinity:
    a pending one belongs to a claim that has not finished."""
    parsed = keys.parse_affinity_key(key)
    if parsed is None or parsed[1].version != 4:
        return None
    if json.loads(value).get("state", "") not in ("", "confirmed"):
        return None
    return parsed[1], parsed[0]


def block_borrowed(value: str) -> dict[str, str]:
    """Address -> allocating node, for the addresses of one block another node took."""
    block = Block.from_json(value)
    borrowed = {}
    for ordinal, index in enumerate(block.allocations):
        if index is None:
            continue
        node = block.attributes[index].secondary.get("node")
        if node and node != block.host:
            borrowed[str(block.address(ordinal))] = node
    return borrowed

