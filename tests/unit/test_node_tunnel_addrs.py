"""Tunnel address allocation for a node, against a real SQLite store."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient
from pycalico.ipam.allocator import Allocator
from pycalico.node.tunnel_addrs import IPIP, VXLAN, reconcile
from tests.support.resources import normalized


@pytest.fixture(autouse=True)
def node1(client: ResourceClient) -> None:
    client.apply(
        resolve("Node"), normalized("Node", "node1", {"bgp": {"ipv4Address": "192.0.2.11/24"}})
    )


def pool(client: ResourceClient, **spec: Any) -> None:
    client.apply(resolve("IPPool"), normalized("IPPool", "p", {"cidr": "10.244.0.0/16", **spec}))


def test_a_vxlan_pool_gives_the_node_the_first_address_of_its_block(client: ResourceClient) -> None:
    pool(client, vxlanMode="Always")
    address = reconcile(client, "node1", VXLAN)
    # The first address handed out is the network address of the node's first block.
    assert ipaddress.ip_network(
        f"{address}/26", strict=False
    ).network_address == ipaddress.ip_address(address)
    node = client.get(resolve("Node"), "node1")
    assert node is not None and node["spec"]["ipv4VXLANTunnelAddr"] == address
    assert reconcile(client, "node1", VXLAN) == address  # stable once set


def test_no_encapsulation_means_no_tunnel_address(client: ResourceClient) -> None:
    pool(client)
    assert reconcile(client, "node1", VXLAN) == ""
    assert reconcile(client, "node1", IPIP) == ""


def test_switching_the_pool_from_vxlan_to_ipip_moves_the_address(client: ResourceClient) -> None:
    pool(client, vxlanMode="Always")
    reconcile(client, "node1", VXLAN)
    pool(client, ipipMode="Always")
    assert reconcile(client, "node1", VXLAN) == ""
    ipip = reconcile(client, "node1", IPIP)
    node = client.get(resolve("Node"), "node1")
    assert node is not None
    assert "ipv4VXLANTunnelAddr" not in node["spec"]
    assert node["spec"]["bgp"]["ipv4IPIPTunnelAddr"] == ipip
    alloc = Allocator(client.backend)
    assert alloc.addresses_of_handle("vxlan-tunnel-addr-node1") == []
    assert [str(a.ip) for a in alloc.addresses_of_handle("ipip-tunnel-addr-node1")] == [ipip]
