"""Deleting a Node the way Calico's client does, so that its addresses go back to the pools.

libcalico-go's `nodes.Delete` (clientv3/node.go), which `calicoctl delete node` calls, first
releases the addresses of the node's WorkloadEndpoints and of its tunnel devices, deletes
those endpoints, gives up the node's block affinities (an empty block goes with its
affinity; one still holding another node's borrowed address only loses its owner), then
deletes the node's BGPPeers, its `node.<name>` FelixConfiguration and BGPConfiguration and
its HostEndpoints, and the Node last. A Node already gone is cleaned up after all the same
and then reported not found, as Calico's does. pycalico also releases the IPv6 VXLAN and
WireGuard addresses, which Calico's list leaves out and which would hold a block forever.
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

from pycalico.api.registry import resolve
from pycalico.api.resource import identity_of
from pycalico.datastore.backend import KeyNotFound
from pycalico.datastore.resources import ResourceClient, ResourceNotFound, UpdateConflict
from pycalico.ipam import keys
from pycalico.ipam.allocator import Allocator


def _tunnel_addresses(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec", {})
    found = [
        spec.get("bgp", {}).get("ipv4IPIPTunnelAddr", ""),
        spec.get("ipv4VXLANTunnelAddr", ""),
        spec.get("ipv6VXLANTunnelAddr", ""),
        spec.get("wireguard", {}).get("interfaceIPv4Address", ""),
        spec.get("wireguard", {}).get("interfaceIPv6Address", ""),
    ]
    return [a for a in found if a]


def _delete_if_present(client: ResourceClient, kind: str, name: str, ns: str | None = None) -> None:
    with contextlib.suppress(ResourceNotFound):
        client.delete(resolve(kind), name, ns)


def delete_node(
    client: ResourceClient, name: str, resource_version: str | None = None
) -> dict[str, Any]:
    node_kind = resolve("Node")
    node = client.get(node_kind, name)
    # A stale version is refused before anything of the node's is touched.
    if node is not None and resource_version not in (None, node["metadata"]["resourceVersion"]):
        raise UpdateConflict(identity_of("Node", name))
    weps = [
        wep
        for wep in client.list(resolve("WorkloadEndpoint"))[0]
        if wep["spec"].get("node") == name
    ]
    addresses = [net for wep in weps for net in wep["spec"].get("ipNetworks", [])]
    addresses += _tunnel_addresses(node or {})
    alloc = Allocator(client.backend)
    alloc.release_ips(ipaddress.ip_interface(a).ip for a in addresses)
    for wep in weps:
        meta = wep["metadata"]
        _delete_if_present(client, "WorkloadEndpoint", meta["name"], meta.get("namespace"))
    for host, cidr in alloc.affinities():
        if host == name:
            alloc.release_affinity(host, cidr)
    # Calico's host marker (RemoveIPAMHost deletes it); pycalico writes none, Calico does.
    with contextlib.suppress(KeyNotFound):
        client.backend.delete(f"{keys.all_affinities_prefix()}{name}")
    for kind in ("BGPPeer", "HostEndpoint"):
        for item in client.list(resolve(kind))[0]:
            if item["spec"].get("node") == name:
                _delete_if_present(client, kind, item["metadata"]["name"])
    for kind in ("FelixConfiguration", "BGPConfiguration"):
        _delete_if_present(client, kind, f"node.{name}")
    return client.delete(node_kind, name, None, resource_version)
