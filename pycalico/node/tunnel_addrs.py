"""Tunnel addresses (calico-node's allocate-tunnel-addrs): one IPAM address per tunnel type.

A node gets a VXLAN (or IPIP) tunnel address while some enabled pool that selects it has
that encapsulation on; the address comes from IPAM (handle `vxlan-tunnel-addr-<node>`,
use `Tunnel`) and is recorded on the Node. When no such pool remains it is released and
the Node field cleared. Runs at startup and again whenever pools or the Node change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pycalico.api.registry import resolve
from pycalico.datastore.backend import Backend
from pycalico.datastore.resources import ResourceClient, UpdateConflict
from pycalico.ipam.allocator import Allocator
from pycalico.ipam.errors import IpamError
from pycalico.selector import parse


@dataclass(frozen=True)
class TunnelType:
    name: str
    handle_prefix: str
    attr_type: str
    mode_field: str  # the IPPool field that turns it on

    def node_field(self, spec: dict[str, Any]) -> str:
        if self.name == "ipip":
            return str(spec.get("bgp", {}).get("ipv4IPIPTunnelAddr", ""))
        return str(spec.get("ipv4VXLANTunnelAddr", ""))


IPIP = TunnelType("ipip", "ipip-tunnel-addr-", "ipipTunnelAddress", "ipipMode")
VXLAN = TunnelType("vxlan", "vxlan-tunnel-addr-", "vxlanTunnelAddress", "vxlanMode")


def _eligible_pools(
    pools: list[dict[str, Any]], tunnel: TunnelType, labels: dict[str, str]
) -> list[dict[str, Any]]:
    return [
        p
        for p in pools
        if ipaddress.ip_network(p["spec"]["cidr"]).version == 4
        and not p["spec"].get("disabled")
        and p["spec"].get(tunnel.mode_field, "Never") != "Never"
        and "Tunnel" in p["spec"].get("allowedUses", ["Workload", "Tunnel"])
        and parse(p["spec"].get("nodeSelector", "all()")).evaluate(labels)
    ]


def _set_field(spec: dict[str, Any], tunnel: TunnelType, value: str) -> dict[str, Any]:
    spec = {**spec}
    if tunnel.name == "ipip":
        bgp = {**spec.get("bgp", {})}
        if value:
            bgp["ipv4IPIPTunnelAddr"] = value
        else:
            bgp.pop("ipv4IPIPTunnelAddr", None)
        spec["bgp"] = bgp
    elif value:
        spec["ipv4VXLANTunnelAddr"] = value
    else:
        spec.pop("ipv4VXLANTunnelAddr", None)
    return spec


def in_place(backend: Backend, node: str, tunnel: TunnelType) -> bool:
    """Whether `backend` (calico-node passes Felix's mirror) shows `node`'s tunnel address
    as the pools want it: the check before every apply then costs no datastore read, and
    only a change goes to the datastore itself."""
    client = ResourceClient(backend)
    current = client.get(resolve("Node"), node)
    if current is None:
        return False
    pools, _ = client.list(resolve("IPPool"))
    eligible = _eligible_pools(pools, tunnel, current["metadata"].get("labels", {}))
    address = tunnel.node_field(current["spec"])
    if not eligible:
        return not address
    held = {str(i.ip) for i in Allocator(backend).addresses_of_handle(tunnel.handle_prefix + node)}
    return address in held and any(
        ipaddress.ip_address(address) in ipaddress.ip_network(p["spec"]["cidr"]) for p in eligible
    )


def reconcile(client: ResourceClient, node: str, tunnel: TunnelType) -> str:
    """Bring `node`'s tunnel address in line with the pools; return it ("" if none)."""
    from pycalico.api.resource import normalize

    kind = resolve("Node")
    alloc = Allocator(client.backend)
    handle = tunnel.handle_prefix + node
    for _ in range(10):
        current = client.get(kind, node)
        if current is None:
            raise IpamError(f"Node {node} does not exist")
        pools, _ = client.list(resolve("IPPool"))
        eligible = _eligible_pools(pools, tunnel, current["metadata"].get("labels", {}))
        address = tunnel.node_field(current["spec"])
        held = {str(i.ip) for i in alloc.addresses_of_handle(handle)}
        in_pool = address and any(
            ipaddress.ip_address(address) in ipaddress.ip_network(p["spec"]["cidr"])
            for p in eligible
        )
        if eligible and in_pool and address in held:
            return address
        if address and address in held:
            alloc.release_by_handle(handle)  # its pool no longer qualifies
        wanted = ""
        if eligible:
            got = alloc.auto_assign(
                1,
                4,
                handle,
                {"node": node, "type": tunnel.attr_type},
                node,
                [p["metadata"]["name"] for p in eligible],
                use="Tunnel",
            )
            wanted = str(got[0].ip)
        if wanted == address:
            return address
        updated = normalize({**current, "spec": _set_field(current["spec"], tunnel, wanted)})
        updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            client.update(kind, updated)
            return wanted
        except UpdateConflict:
            if wanted:
                alloc.release_by_handle(handle)
            continue
    raise IpamError(
        f"could not record the {tunnel.name} tunnel address of {node}: too many concurrent updates"
    )
