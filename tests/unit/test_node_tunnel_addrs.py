"""Tunnel address allocation for a node, against a real SQLite store."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.resources import ResourceClient
from pycalico.ipam.allocator import Allocator
from pycalico.node.tunnel_addrs import IPIP, VXLAN, in_place, reconcile
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


def mirror_of(client: ResourceClient) -> Mirror:
    mirror = Mirror("/calico/")
    mirror.load(client.backend)
    return mirror


def test_the_check_before_each_apply_reads_only_felixs_mirror(client: ResourceClient) -> None:
    """Once the address is as the pools want it, the mirror says so: calico-node goes to
    the datastore only when something changed."""
    pool(client, vxlanMode="Always")
    assert not in_place(mirror_of(client), "node1", VXLAN)  # no address yet
    reconcile(client, "node1", VXLAN)
    assert in_place(mirror_of(client), "node1", VXLAN)
    assert in_place(mirror_of(client), "node1", IPIP)  # none wanted, none held
    pool(client, ipipMode="Always")
    assert not in_place(mirror_of(client), "node1", VXLAN)  # its pool no longer qualifies
    assert not in_place(mirror_of(client), "node1", IPIP)
    reconcile(client, "node1", VXLAN)
    reconcile(client, "node1", IPIP)
    assert in_place(mirror_of(client), "node1", VXLAN) and in_place(
        mirror_of(client), "node1", IPIP
    )


def test_a_node_missing_from_the_mirror_is_not_in_place(client: ResourceClient) -> None:
    assert not in_place(mirror_of(client), "node9", VXLAN)
